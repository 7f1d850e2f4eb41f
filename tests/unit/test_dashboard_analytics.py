"""Pure parts of the analytics screen: window, URL state, comparisons, chart, sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.dashboard import traffic, visits
from storage.dashboard.period import allowed_intervals, buckets, period
from storage.dashboard.selection import Selection
from storage.dashboard.traffic import Totals

NOW = datetime(2026, 3, 28, 12, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("preset", "intervals"),
    [("24h", ["minute", "hour"]), ("7d", ["hour", "day"]), ("30d", ["hour", "day"])],
)
def test_each_range_allows_the_intervals_the_builders_accept(
    preset: str, intervals: list[str]
) -> None:
    assert period(preset, None, None, NOW).intervals == intervals


def test_a_window_defaults_to_24_hours_by_hour_in_utc() -> None:
    window = period(None, None, None, NOW)
    assert (window.preset, window.interval, window.tz, window.notice) == (
        "24h",
        "hour",
        "UTC",
        None,
    )
    assert (window.start, window.end) == (NOW - timedelta(hours=24), NOW)
    assert window.previous == (NOW - timedelta(hours=48), NOW - timedelta(hours=24))


def test_unknown_values_fall_back_and_a_bad_zone_says_so() -> None:
    window = period("1y", "minute", "Mars/Olympus", NOW)
    assert (window.preset, window.interval, window.tz) == ("24h", "minute", "UTC")
    assert window.notice and "Mars/Olympus" in window.notice
    assert period("30d", "minute", "Europe/Berlin", NOW).interval == "day"
    assert period("30d", "minute", "Europe/Berlin", NOW).tz == "Europe/Berlin"


def test_one_bucket_or_too_many_is_not_an_interval() -> None:
    assert allowed_intervals(timedelta(hours=1)) == ["minute"]
    assert allowed_intervals(timedelta(days=400)) == ["day"]


def test_buckets_start_at_the_utc_bucket_holding_the_start() -> None:
    hours = buckets(NOW - timedelta(hours=2), NOW, "hour")
    assert hours[0] == datetime(2026, 3, 28, 10, tzinfo=UTC) and len(hours) == 3
    days = buckets(NOW - timedelta(days=2), NOW, "day")
    assert days == [datetime(2026, 3, d, tzinfo=UTC) for d in (26, 27, 28)]


def test_the_selection_round_trips_through_the_url() -> None:
    query = {"range": "7d", "tz": "Europe/Berlin", "browser": "Firefox", "referrer": "", "x": "1"}
    chosen = Selection.parse(query)
    assert chosen.filters == (("referrer", ""), ("browser", "Firefox"))
    assert chosen.session_filters == {"referrer": "", "browser": "Firefox"}
    assert chosen.query() == "?range=7d&tz=Europe%2FBerlin&referrer=&browser=Firefox"
    assert Selection.parse(dict(chosen.params())) == chosen
    assert chosen.with_filter("browser", "Chrome").filters[-1] == ("browser", "Chrome")
    assert chosen.without("browser").without("referrer").query() == "?range=7d&tz=Europe%2FBerlin"
    assert Selection().query() == ""


def test_page_is_not_a_session_filter_and_long_values_are_dropped() -> None:
    chosen = Selection.parse({"page": "/a", "device": "x" * 501})
    assert (chosen.page, chosen.session_filters) == ("/a", {})


@pytest.mark.parametrize(
    ("text", "steps"),
    [("/a, /b ,signup", ["/a", "/b", "signup"]), ("/a", []), (",".join("abcdefghijk"), [])],
)
def test_funnel_steps_come_comma_separated(text: str, steps: list[str]) -> None:
    assert Selection(funnel=text).funnel_steps == steps


@pytest.mark.parametrize(
    ("name", "now", "before", "text", "tone"),
    [
        ("pageviews", 112, 100, "+12% vs previous 24 h", "good"),
        ("pageviews", 50, 100, "-50% vs previous 24 h", "bad"),
        ("pageviews", 100, 100, "±0% vs previous 24 h", ""),
        ("pageviews", 5, 0, "none in previous 24 h", ""),
        ("bounce_rate", 40.0, 50.0, "-10.0 pp vs previous 24 h", "good"),
        ("bounce_rate", 40.0, None, "no visits in previous 24 h", ""),
        ("avg_duration_s", None, 10.0, "", ""),
    ],
)
def test_a_change_is_relative_and_coloured_by_which_way_is_better(
    name: str, now: float | None, before: float | None, text: str, tone: str
) -> None:
    assert traffic.change(name, now, before, "24 h") == (text, tone)


def test_totals_weight_bounce_rate_and_duration_by_sessions() -> None:
    points: list[dict[str, Any]] = [
        {
            "pageviews": 10,
            "visitors": 3,
            "sessions": 1,
            "bounce_rate": 100.0,
            "avg_duration_s": 0.0,
        },
        {"pageviews": 5, "visitors": 2, "sessions": 3, "bounce_rate": 0.0, "avg_duration_s": 40.0},
        {"pageviews": 2, "visitors": 1, "sessions": 0, "bounce_rate": None, "avg_duration_s": None},
    ]
    assert traffic.totals(points, visitors=4) == Totals(17, 4, 4, 25.0, 30.0)
    assert traffic.totals([], visitors=0) == Totals(0, 0, 0, None, None)


@pytest.mark.parametrize(
    ("seconds", "text"), [(45, "45 s"), (185, "3 min 5 s"), (300, "5 min"), (3720, "1 h 2 min")]
)
def test_durations_read_in_two_units(seconds: float, text: str) -> None:
    assert traffic.duration(seconds) == text


def test_the_chart_has_every_bucket_with_gaps_as_zero() -> None:
    start = NOW - timedelta(hours=3)
    point = {"bucket": datetime(2026, 3, 28, 10, tzinfo=UTC), "pageviews": 4}
    data = traffic.chart([{**point, "visitors": 2, "sessions": 1}], start, NOW, "hour")
    assert data["x"] == [
        int(datetime(2026, 3, 28, h, tzinfo=UTC).timestamp()) for h in (9, 10, 11, 12)
    ]
    assert (data["pageviews"], data["sessions"]) == ([0, 4, 0, 0], [0, 1, 0, 0])


def test_markers_are_the_incidents_and_anomalies_inside_the_window() -> None:
    inside, outside = NOW - timedelta(hours=1), NOW - timedelta(days=2)
    incidents = [
        {"id": "i1", "title": "down", "opened_at": inside},
        {"id": "i0", "title": "old", "opened_at": outside},
    ]
    anomalies = [
        {"at": inside - timedelta(minutes=5), "family": "f", "name": "n", "explanation": "e"}
    ]
    found = traffic.markers(incidents, anomalies, NOW - timedelta(days=1), NOW)
    assert [(m.kind, m.label, m.href) for m in found] == [
        ("anomaly", "f · n: e", None),
        ("incident", "down", "/dashboard/incidents/i1"),
    ]


def test_drop_offs_count_who_left_since_the_previous_step() -> None:
    steps = [
        {"step": "/", "visitors": 10},
        {"step": "/b", "visitors": 4},
        {"step": "c", "visitors": 0},
    ]
    found = traffic.drop_offs(steps)
    assert [(s["lost"], s["lost_pct"]) for s in found] == [(None, None), (6, 60.0), (4, 100.0)]


def session(sid: str, who: str, minutes_ago: float, **over: Any) -> dict[str, Any]:
    return {
        "session_id": sid,
        "distinct_id": who,
        "started_at": NOW - timedelta(minutes=minutes_ago),
        "pageviews": 2,
        "duration_s": 30.0,
        "bounce": False,
        "browser": "Firefox",
        "referrer": None,
        **over,
    }


SESSIONS = [
    session("s1", "u1", 10),
    session("s2", "u1", 20, browser="Chrome", bounce=True, duration_s=0.0, pageviews=1),
    session("s3", "u2", 40, browser="Chrome", referrer="https://x.test/"),
    session("s4", "u3", 60 * 30),  # started before the window
]


def test_sessions_match_the_window_and_every_filter_with_missing_as_empty() -> None:
    start = NOW - timedelta(hours=24)
    assert [s["session_id"] for s in visits.matching(SESSIONS, {}, start, NOW)] == [
        "s1",
        "s2",
        "s3",
    ]
    chrome = visits.matching(SESSIONS, {"browser": "Chrome"}, start, NOW)
    assert [s["session_id"] for s in chrome] == ["s2", "s3"]
    direct = visits.matching(SESSIONS, {"browser": "Chrome", "referrer": ""}, start, NOW)
    assert [s["session_id"] for s in direct] == ["s2"]


def test_session_totals_and_top_values() -> None:
    kept = SESSIONS[:3]
    assert visits.totals(kept) == Totals(5, 2, 3, 100 / 3, 20.0)
    assert visits.totals([]) == Totals(0, 0, 0, None, None)
    assert visits.top(kept, "browser", 10) == [
        {"value": "Chrome", "sessions": 2, "visitors": 2},
        {"value": "Firefox", "sessions": 1, "visitors": 1},
    ]
    assert visits.top(kept, "browser", 1)[0]["value"] == "Chrome"


def test_session_series_buckets_by_start() -> None:
    found = visits.series(SESSIONS[:3], "hour")
    assert [(p["bucket"].hour, p["sessions"], p["visitors"], p["pageviews"]) for p in found] == [
        (11, 1, 1, 2),
        (12, 2, 1, 3),
    ]
