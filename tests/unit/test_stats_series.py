from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from stream_processors.logic.anomaly import WindowState, slow_step
from stream_processors.logic.series import (
    DURATION,
    ERROR,
    METRIC,
    OUTPUT_SIZE,
    TRANSACTION,
    SeriesKey,
    SeriesState,
    event_time,
    fold,
    points,
    snapshot,
    tick,
    title,
)
from stream_processors.logic.thresholds import Thresholds

DEFAULT = Thresholds()
T0 = 1_700_000_100.0  # 20 s into a 5-minute window


def event(kind: str, **attributes: Any) -> dict[str, Any]:
    return {"project_id": 7, "kind": kind, "attributes": attributes}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            event("check_in", monitor="backup", status="ok", duration_ms=1200, output_size=50),
            [
                (SeriesKey(7, DURATION, "backup"), 1200.0),
                (SeriesKey(7, OUTPUT_SIZE, "backup"), 50.0),
            ],
        ),
        (
            event("check_in", monitor="backup", status="fail", duration_ms=3),
            [(SeriesKey(7, DURATION, "backup"), 3.0)],
        ),
        (event("check_in", monitor="backup", status="start"), []),
        (
            event("transaction", name="GET /a", route="/a", duration_ms=12.5),
            [(SeriesKey(7, TRANSACTION, "/a"), 12.5)],
        ),
        (
            event("transaction", name="GET /a", duration_ms=1),
            [(SeriesKey(7, TRANSACTION, "GET /a"), 1.0)],
        ),
        (event("web_vital", name="LCP", value=2400), [(SeriesKey(7, "web_vital", "LCP"), 2400.0)]),
        (event("metric", name="queue", value=-3), [(SeriesKey(7, METRIC, "queue"), -3.0)]),
        (event("error", message="boom"), [(SeriesKey(7, ERROR, "errors"), 1.0)]),
        (event("pageview", url="https://x"), []),
    ],
)
def test_each_family_feeds_its_series(doc: dict[str, Any], expected: list[Any]) -> None:
    assert points(doc) == expected


@pytest.mark.parametrize(
    "doc",
    [
        event("transaction", name="GET /a", duration_ms="slow"),
        event("transaction", name="GET /a", duration_ms=True),
        event("metric", name="queue", value=float("inf")),
        event("metric", value=1),
        event("check_in", monitor="", status="ok", duration_ms=1),
        {"project_id": "7", "kind": "error", "attributes": {}},
    ],
)
def test_a_malformed_event_is_refused_with_a_value_error(doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        points(doc)


def test_a_series_key_round_trips_even_with_a_bar_in_the_name() -> None:
    key = SeriesKey(3, TRANSACTION, "GET /a|b")
    assert key.encode() == "3|transaction|GET /a|b"
    assert SeriesKey.decode(key.encode()) == key


def test_event_time_reads_iso_timestamps_and_naive_ones_as_utc() -> None:
    assert event_time({"timestamp": "2023-11-14T22:13:20Z"}) == 1_700_000_000.0
    assert event_time({"timestamp": "2023-11-14T22:13:20"}) == 1_700_000_000.0


def test_a_very_slow_run_after_twelve_normal_ones_is_located_and_explained() -> None:
    values = [1000.0 + 10 * (i % 3) for i in range(12)] + [60_000.0, 1005.0]
    times = [T0 + i for i in range(len(values))]
    state, found = fold(DURATION, SeriesState(), values, times, DEFAULT)
    assert [f.index for f in found] == [12]
    anomaly = found[0].anomaly
    assert anomaly.rule == "duration" and anomaly.value == 60_000.0
    assert anomaly.at == datetime.fromtimestamp(T0 + 12, UTC)
    assert anomaly.explanation.startswith("took 60.0 s,") and "n=12" in anomaly.explanation
    assert state.duration.stats.count == 14


def test_stats_of_a_batch_match_numpy() -> None:
    values = np.random.default_rng(1).lognormal(3, 1, 500)
    state, found = fold(METRIC, SeriesState(), values.tolist(), [T0] * 500, DEFAULT)
    state, _ = fold(METRIC, state, [5.0, 6.0], [T0, T0], DEFAULT)
    everything = np.concatenate([values, [5.0, 6.0]])
    stats = state.duration.stats
    assert found == [] and stats.count == 502
    assert stats.mean == pytest.approx(np.mean(everything), rel=1e-12)
    assert stats.std == pytest.approx(np.std(everything, ddof=1), rel=1e-9)


def test_a_quiet_transaction_batch_folds_like_slow_step_one_by_one() -> None:
    values = [120.0, 300.0, 80.0]
    state, found = fold(TRANSACTION, SeriesState(), values, [T0, T0 + 1, T0 + 2], DEFAULT)
    expected = WindowState()
    for i, value in enumerate(values):
        expected, _ = slow_step(expected, value, datetime.fromtimestamp(T0 + i, UTC), DEFAULT)
    assert found == [] and state.window == expected


def test_a_request_over_five_seconds_is_a_slow_request_at_its_index() -> None:
    _, found = fold(TRANSACTION, SeriesState(), [100.0, 7000.0], [T0, T0 + 1], DEFAULT)
    assert [(f.anomaly.rule, f.index) for f in found] == [("slow_request", 1)]


def test_a_slow_window_is_closed_by_the_timer_tick() -> None:
    state, _ = fold(TRANSACTION, SeriesState(), [6000.0, 5500.0], [T0, T0 + 1], DEFAULT)
    state, found = tick(state, T0 + 300, DEFAULT)
    assert [(f.anomaly.rule, f.index) for f in found] == [("slow_window", -1)]
    assert state.window == WindowState()


def test_the_tenth_error_in_a_window_without_history_is_a_spike() -> None:
    _, found = fold(ERROR, SeriesState(), [1.0] * 12, [T0 + i for i in range(12)], DEFAULT)
    assert [(f.anomaly.rule, f.index) for f in found] == [("error_rate", 9)]


def test_an_output_far_below_the_last_seven_runs_is_an_output_size_anomaly() -> None:
    values = [1000.0] * 7 + [100.0]
    state, found = fold(OUTPUT_SIZE, SeriesState(), values, [T0] * 8, DEFAULT)
    assert [(f.anomaly.rule, f.index) for f in found] == [("output_size", 7)]
    assert state.duration.stats.count == 8


def test_the_state_survives_a_json_round_trip() -> None:
    state, _ = fold(TRANSACTION, SeriesState(), [100.0, 200.0], [T0, T0], DEFAULT)
    state, _ = fold(OUTPUT_SIZE, state, [5.0], [T0], DEFAULT)
    assert SeriesState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_a_snapshot_reports_count_mean_and_quantiles() -> None:
    state, _ = fold(METRIC, SeriesState(), [1.0, 2.0, 3.0, 10.0], [T0] * 4, DEFAULT)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    doc = snapshot(SeriesKey(7, METRIC, "queue"), state, at)
    assert (doc["count"], doc["mean"], doc["min"], doc["max"], doc["version"]) == (
        4,
        4.0,
        1.0,
        10.0,
        4,
    )
    assert doc["p50"] == pytest.approx(2.0, rel=0.01)
    assert doc["at"] == "2026-01-01T00:00:00+00:00" and doc["name"] == "queue"


@pytest.mark.parametrize(
    ("key", "rule", "expected"),
    [
        (SeriesKey(1, DURATION, "backup"), "duration", "Monitor backup ran unusually long"),
        (
            SeriesKey(1, OUTPUT_SIZE, "backup"),
            "output_size",
            "Monitor backup produced unusually little output",
        ),
        (SeriesKey(1, TRANSACTION, "/a"), "slow_request", "Slow endpoint /a"),
        (SeriesKey(1, ERROR, "errors"), "error_rate", "Error spike"),
    ],
)
def test_incident_titles_name_the_series(key: SeriesKey, rule: str, expected: str) -> None:
    assert title(key, rule) == expected
