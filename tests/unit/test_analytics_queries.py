"""The analytics SQL builders: scoping, bounds and the pure post-processing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import analytics_queries as aq

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=1)

BUILDERS = [
    aq.pageview_series("db", 7, SINCE, UNTIL, "hour"),
    aq.pageview_totals("db", 7, SINCE, UNTIL),
    aq.session_series("db", 7, SINCE, UNTIL, "day"),
    aq.breakdown("db", 7, SINCE, UNTIL, "referrer", 10),
    aq.breakdown("db", 7, SINCE, UNTIL, "device", 10),
    aq.live_visitors("db", 7, UNTIL),
    aq.web_vitals("db", 7, SINCE, UNTIL, 10),
    aq.routes("db", 7, SINCE, UNTIL, 10, "p95"),
    aq.metric_series("db", 7, SINCE, UNTIL, "minute", "queue.depth"),
]


# A copy of a row cannot change a funnel level or a set of weeks, so these skip FINAL
# (the integration tests insert every row twice).
COPY_PROOF = [
    aq.funnel("db", 7, SINCE, UNTIL, ["/", "signup"], 60),
    aq.retention("db", 7, SINCE, UNTIL),
]


@pytest.mark.parametrize(("sql", "params"), BUILDERS + COPY_PROOF)
def test_every_query_is_scoped_to_the_bound_project(sql: str, params: dict[str, object]) -> None:
    assert "project_id = {project:UInt32}" in sql
    assert params["project"] == 7


@pytest.mark.parametrize(("sql", "params"), BUILDERS)
def test_queries_that_count_rows_read_with_final(sql: str, params: dict[str, object]) -> None:
    assert "FINAL" in sql


@pytest.mark.parametrize(("sql", "params"), COPY_PROOF)
def test_funnels_and_retention_read_without_final(sql: str, params: dict[str, object]) -> None:
    assert "FINAL" not in sql and "distinct_id != ''" in sql


@pytest.mark.parametrize(
    ("interval", "span", "allowed"),
    [
        ("minute", timedelta(hours=25), True),
        ("minute", timedelta(days=2), False),
        ("hour", timedelta(days=62), True),
        ("hour", timedelta(days=63), False),
        ("day", timedelta(days=400), True),
    ],
)
def test_a_series_is_limited_in_points(
    interval: aq.Interval, span: timedelta, allowed: bool
) -> None:
    if allowed:
        aq.check_buckets(interval, SINCE, SINCE + span)
    else:
        with pytest.raises(aq.BadAnalyticsQuery):
            aq.check_buckets(interval, SINCE, SINCE + span)


@pytest.mark.parametrize("steps", [["/"], [f"/{i}" for i in range(aq.MAX_FUNNEL_STEPS + 1)]])
def test_a_funnel_has_two_to_ten_steps(steps: list[str]) -> None:
    with pytest.raises(aq.BadAnalyticsQuery):
        aq.funnel("db", 1, SINCE, UNTIL, steps, 60)


def test_funnel_steps_are_bound_parameters_pages_by_path_and_events_by_name() -> None:
    sql, params = aq.funnel("db", 1, SINCE, UNTIL, ["/pricing", "x'); DROP"], 600)
    assert (params["s0"], params["s1"], params["window"]) == ("/pricing", "x'); DROP", 600)
    assert "kind = 'pageview' AND" in sql and "= {s0:String}" in sql
    assert "kind = 'event' AND name = {s1:String}" in sql
    assert "DROP" not in sql


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ({3: 1, 2: 1, 1: 2}, [(4, 100.0), (2, 50.0), (1, 25.0)]),
        ({0: 5}, [(0, None), (0, None), (0, None)]),
        ({1: 3}, [(3, 100.0), (0, 0.0), (0, 0.0)]),
    ],
)
def test_funnel_steps_count_visitors_who_reached_each_depth(
    levels: dict[int, int], expected: list[tuple[int, float | None]]
) -> None:
    steps = aq.funnel_steps(["/", "/pricing", "signup"], levels)
    assert [(s["visitors"], s["conversion_pct"]) for s in steps] == expected


@pytest.mark.parametrize(
    ("by", "table"),
    [
        ("page", "pageviews"),
        ("utm_campaign", "pageviews"),
        ("browser", "sessions"),
        ("os", "sessions"),
    ],
)
def test_breakdowns_read_pages_from_page_views_and_devices_from_sessions(
    by: aq.Dimension, table: str
) -> None:
    sql, _ = aq.breakdown("db", 1, SINCE, UNTIL, by, 5)
    assert f"FROM db.{table} FINAL" in sql


def test_route_json_derives_throughput_and_error_rate() -> None:
    row = {"route": "GET /a", "requests": 120, "failed": 6, "latency": [10.0, 90.0, 120.0]}
    out = aq.route_json(row, SINCE, SINCE + timedelta(hours=1))
    assert out == {
        "route": "GET /a",
        "requests": 120,
        "throughput_rpm": 2.0,
        "error_rate_pct": 5.0,
        "latency_ms": {"p50": 10.0, "p95": 90.0, "p99": 120.0},
    }


def test_live_visitors_look_back_five_minutes_from_now() -> None:
    _, params = aq.live_visitors("db", 1, UNTIL)
    assert params["since"] == UNTIL - timedelta(minutes=5)
    assert params["until"] > UNTIL


@pytest.mark.parametrize(
    ("since", "until", "step", "whole"),
    [
        ("10:00:00", "11:00:00", "minute", ("10:00:00", "11:00:00")),
        ("10:00:30", "10:05:30", "minute", ("10:01:00", "10:05:00")),
        ("10:00:30", "10:00:50", "minute", ("10:01:00", "10:01:00")),
        ("10:59:59", "13:00:01", "hour", ("11:00:00", "13:00:00")),
        ("10:20:00", "10:40:00", "hour", ("11:00:00", "11:00:00")),
    ],
)
def test_the_rollups_answer_for_the_whole_buckets_inside_a_range(
    since: str, until: str, step: aq.Interval, whole: tuple[str, str]
) -> None:
    def at(t: str) -> datetime:
        return datetime.fromisoformat(f"2026-03-29T{t}+00:00")

    lo, hi = aq._whole(at(since), at(until), aq._STEP[step])
    assert (lo, hi) == (at(whole[0]), at(whole[1]))
