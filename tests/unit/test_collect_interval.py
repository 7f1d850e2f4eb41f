"""``--interval``: 10s, 1m, 1h or plain seconds, in a sane range."""

from __future__ import annotations

import pytest

from pulseline.collectors.interval import format_interval, parse_interval


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m", 60.0),
        ("2h", 7200.0),
        ("30", 30.0),
        ("2.5", 2.5),
        ("0.5s", 0.5),
        (" 15 S ", 15.0),
        ("1.5m", 90.0),
        ("24h", 86400.0),
    ],
)
def test_an_interval_is_read_in_seconds(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "not a duration"),
        ("ten", "not a duration"),
        ("10x", "not a duration"),
        ("-5s", "not a duration"),
        ("1m30s", "not a duration"),
        ("0", "out of range"),
        ("0s", "out of range"),
        ("25h", "out of range"),
    ],
)
def test_a_bad_interval_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_interval(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(10.0, "10s"), (60.0, "1m"), (90.0, "90s"), (7200.0, "2h"), (2.5, "2.5s")]
)
def test_an_interval_is_shown_in_its_largest_whole_unit(seconds: float, text: str) -> None:
    assert format_interval(seconds) == text
