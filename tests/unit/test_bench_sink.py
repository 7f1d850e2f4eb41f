"""The sink bench's arithmetic and its events: as the gateway stamps them, and all rows."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from pulseline.schemas import Event, EventKind
from pulseline.topics import INGEST
from storage.bench_sink import REQUEST_EVENTS, build_records, rate
from storage.rows import EVENTS, Source, decode


@pytest.mark.parametrize(
    ("rows", "seconds", "expected"),
    [(500_000, 2.5, 200_000.0), (1, 3.0, 0.3), (10, 0.0, 10_000.0), (0, 1.0, 0.0)],
)
def test_the_rate_is_rows_per_second_and_never_divides_by_zero(
    rows: int, seconds: float, expected: float
) -> None:
    assert rate(rows, seconds) == expected


def test_the_events_are_stamped_envelopes_of_every_family_on_their_topics() -> None:
    records = build_records(3 * REQUEST_EVENTS, "p.")
    events = [Event.model_validate_json(value) for _, _, value in records]
    assert Counter(e.kind for e in events).keys() == set(EventKind)
    topics = [topic for topic, _, _ in records]
    assert topics == [INGEST[e.kind].physical("p.") for e in events]
    assert len({e.event_id for e in events}) == len(events)
    zones = {orjson.loads(value)["timestamp"][-6:] for _, _, value in records}
    assert "+02:00" in zones  # some clients send their own zone


def test_the_events_of_one_request_share_their_received_at() -> None:
    events = [orjson.loads(value) for _, _, value in build_records(2 * REQUEST_EVENTS, "")]
    first, second = events[:REQUEST_EVENTS], events[REQUEST_EVENTS:]
    assert len({e["received_at"] for e in first}) == 1
    assert first[0]["received_at"] != second[0]["received_at"]


def test_every_event_becomes_a_row() -> None:
    for offset, (topic, key, value) in enumerate(build_records(200, "")):
        decode(EVENTS, value, Source(topic, 0, offset, key))
