"""The SDK's pure policies: answers, Retry-After, backoff, the drop-oldest queue, the URL."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from pulseline.sdk.buffer import DropOldest
from pulseline.sdk.options import Options, Target, parse_target
from pulseline.sdk.retry import Backoff, Outcome, classify, parse_retry_after

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SENT),
        (202, Outcome.SENT),
        (400, Outcome.REJECTED),
        (401, Outcome.REJECTED),
        (404, Outcome.REJECTED),
        (413, Outcome.REJECTED),
        (415, Outcome.REJECTED),
        (408, Outcome.REJECTED),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (None, Outcome.RETRY),
    ],
)
def test_what_each_answer_means(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 1 ", 1.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        (format_datetime(datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC), usegmt=True), 30.0),
        (format_datetime(datetime(2026, 3, 1, 11, 0, 0, tzinfo=UTC), usegmt=True), 0.0),
        ("Sun, 01 Mar 2026 12:00:10", None),  # no zone: not an HTTP date
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (0, 0.0, 0.25),
        (0, 1.0, 0.5),
        (1, 0.0, 0.5),
        (1, 0.5, 0.75),
        (3, 1.0, 4.0),
        (10, 0.0, 15.0),
        (10, 1.0, 30.0),
        (500, 1.0, 30.0),
    ],
)
def test_backoff_doubles_with_jitter_between_half_and_all_up_to_the_cap(
    attempt: int, rand: float, expected: float
) -> None:
    assert Backoff(base=0.5, cap=30.0).backoff(attempt, lambda: rand) == expected


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "7", 7.0),
        (503, "7", 7.0),
        (503, "0", 0.0),
        (429, "86400", 300.0),  # capped: a monthly quota must not pin the sender
        (429, None, 1.0),
        (503, "later", 1.0),
        (500, "7", 1.0),  # only 429 and 503 carry a Retry-After the SDK obeys
        (None, None, 1.0),
    ],
)
def test_retry_after_wins_on_429_and_503(
    status: int | None, header: str | None, expected: float
) -> None:
    policy = Backoff(base=1.0, cap=30.0, max_retry_after=300.0)

    assert policy.delay(status, header, 0, lambda: 1.0, NOW) == expected


def _fill(queue: DropOldest, *items: bytes) -> list[int]:
    return [queue.put(item, at=float(i)) for i, item in enumerate(items)]


@pytest.mark.parametrize(
    ("max_events", "max_bytes", "items", "kept", "dropped"),
    [
        (3, 100, [b"a", b"b", b"c"], [b"a", b"b", b"c"], 0),
        (3, 100, [b"a", b"b", b"c", b"d"], [b"b", b"c", b"d"], 1),
        (2, 100, [b"a", b"b", b"c", b"d", b"e"], [b"d", b"e"], 3),
        (10, 4, [b"aa", b"bb", b"cc"], [b"bb", b"cc"], 1),
        (10, 4, [b"a", b"b", b"cccc"], [b"cccc"], 2),
        (10, 4, [b"a", b"toolarge"], [b"a"], 1),  # larger than the whole budget: itself dropped
    ],
)
def test_a_full_queue_drops_its_oldest_and_counts_them(
    max_events: int, max_bytes: int, items: list[bytes], kept: list[bytes], dropped: int
) -> None:
    queue = DropOldest(max_events, max_bytes)

    _fill(queue, *items)

    assert [e.data for e in queue.take(100, 10_000)] == kept
    assert queue.dropped == dropped
    assert queue.size_bytes == 0


def test_put_says_how_many_it_dropped_and_sequence_numbers_keep_counting() -> None:
    queue = DropOldest(2, 100)

    assert _fill(queue, b"a", b"b", b"c") == [0, 0, 1]
    assert queue.first_seq() == 2
    assert queue.last_seq == 3
    assert queue.oldest_at() == 1.0


@pytest.mark.parametrize(
    ("sizes", "max_events", "max_bytes", "taken"),
    [
        ([1, 1, 1, 1], 3, 1000, 3),
        ([10, 10, 10], 100, 23, 2),  # "[" + 10 + "," + 10 + "]" = 23 bytes
        ([10, 10, 10], 100, 22, 1),
        ([50, 1], 100, 10, 1),  # an event larger than a request still goes, alone
        ([], 10, 10, 0),
    ],
)
def test_take_fills_a_request_up_to_its_events_and_bytes(
    sizes: list[int], max_events: int, max_bytes: int, taken: int
) -> None:
    queue = DropOldest(100, 10_000)
    _fill(queue, *(b"x" * n for n in sizes))

    batch = queue.take(max_events, max_bytes)

    assert [e.seq for e in batch] == list(range(1, taken + 1))
    assert len(queue) == len(sizes) - taken


def test_a_queue_needs_room() -> None:
    with pytest.raises(ValueError):
        DropOldest(0, 10)


@pytest.mark.parametrize(
    ("given", "key", "target"),
    [
        ("http://127.0.0.1:8000", "k1", Target("http://127.0.0.1:8000/v1/events", "k1")),
        ("https://gw.example/", "k1", Target("https://gw.example/v1/events", "k1")),
        ("https://gw.example/v1/events", "k1", Target("https://gw.example/v1/events", "k1")),
        ("https://k2@gw.example", None, Target("https://gw.example/v1/events", "k2")),
        (
            "https://k2@gw.example:8443/pl",
            "k1",
            Target("https://gw.example:8443/pl/v1/events", "k1"),
        ),
        ("http://[::1]:9000", "k1", Target("http://[::1]:9000/v1/events", "k1")),
    ],
)
def test_a_url_or_dsn_names_the_endpoint_and_key(
    given: str, key: str | None, target: Target
) -> None:
    assert parse_target(given, key) == target


@pytest.mark.parametrize(
    ("given", "key"),
    [("http://127.0.0.1:8000", None), ("ftp://k@host", None), ("gw.example", "k"), ("", "k")],
)
def test_an_unusable_url_or_missing_key_is_refused(given: str, key: str | None) -> None:
    with pytest.raises(ValueError):
        parse_target(given, key)


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"max_retries": -1}, {"flush_interval": -1.0}])
def test_options_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Options(**bad)  # type: ignore[arg-type]
