"""Auto-resolve of anomaly incidents: the alarm step, each family's rule, the timer, JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from pulseline.records.incidents import IncidentSignal, IncidentState, Severity
from stream_processors.incident_signals import apply_signal, signal_of
from stream_processors.logic.anomaly import RecentState, WindowState
from stream_processors.logic.incidents import IncidentBook, IncidentRequest, ResolveRequest
from stream_processors.logic.recovery import (
    Alarm,
    Fired,
    Normal,
    Recovery,
    Resolved,
    error_closed,
    size_normal,
    slow_closed,
    step,
)
from stream_processors.logic.series import (
    DURATION,
    ERROR,
    INCIDENT_KINDS,
    OUTPUT_SIZE,
    TRANSACTION,
    Found,
    SeriesKey,
    SeriesState,
    dedup_key,
    fold,
    fold_resolving,
    tick_resolving,
    title,
)
from stream_processors.logic.thresholds import Thresholds

DEFAULT = Thresholds()
TWICE = Thresholds(resolve_after=2)
W0 = 300 * 5_666_667.0  # the start of a 5-minute window (22:15 UTC)
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def label(output: Found | Resolved) -> str:
    if isinstance(output, Resolved):
        return f"resolve {output.rule}"
    return f"open {output.anomaly.rule}"


# --- the alarm step -------------------------------------------------------------------------


def fired(rule: str, window: int | None = None) -> Fired:
    return Fired(rule, window)


def normal(rule: str, window: int | None = None) -> Normal:
    return Normal(rule, f"back to normal ({rule})", AT, 0, window)


@pytest.mark.parametrize(
    ("observations", "thresholds", "resolved"),
    [
        pytest.param([normal("duration")], DEFAULT, [], id="a_rule_that_never_fired_sends_none"),
        pytest.param([fired("duration"), normal("duration")], DEFAULT, ["duration"], id="k1"),
        pytest.param(
            [fired("duration"), normal("duration"), normal("duration")],
            DEFAULT,
            ["duration"],
            id="resolves_once_then_stays_quiet",
        ),
        pytest.param([fired("duration"), normal("duration")], TWICE, [], id="k2_one_is_short"),
        pytest.param(
            [fired("duration"), normal("duration"), normal("duration")],
            TWICE,
            ["duration"],
            id="k2_two_in_a_row",
        ),
        pytest.param(
            [fired("duration"), normal("duration"), fired("duration"), normal("duration")],
            TWICE,
            [],
            id="k2_an_anomaly_between_restarts_the_count",
        ),
        pytest.param(
            [fired("slow_request", 5), normal("slow_window", 6)],
            DEFAULT,
            [],
            id="another_rules_normal_does_not_resolve",
        ),
        pytest.param(
            [fired("error_rate", 5), normal("error_rate", 5)],
            DEFAULT,
            [],
            id="the_window_that_fired_is_not_a_normal_one",
        ),
        pytest.param(
            [fired("error_rate", 5), normal("error_rate", 6)],
            DEFAULT,
            ["error_rate"],
            id="a_later_window_is",
        ),
        pytest.param(
            [fired("slow_request", 7), fired("slow_request", 5), normal("slow_request", 6)],
            DEFAULT,
            [],
            id="a_late_anomaly_does_not_move_the_window_back",
        ),
        pytest.param(
            [fired("slow_request", 5), fired("slow_window", 5), normal("slow_window", 6)],
            DEFAULT,
            ["slow_window"],
            id="rules_resolve_apart",
        ),
    ],
)
def test_the_alarm_step(
    observations: list[Fired | Normal], thresholds: Thresholds, resolved: list[str]
) -> None:
    state, out = Recovery(), []
    for observation in observations:
        state, more = step(state, observation, thresholds)
        out += more
    assert [r.rule for r in out] == resolved


def test_a_resolve_after_k_runs_says_so_and_comes_from_the_last_normal_run() -> None:
    state, _ = step(Recovery(), fired("duration"), TWICE)
    state, _ = step(state, normal("duration"), TWICE)
    assert state.alarms == {"duration": Alarm(normal=1)}
    state, [resolved] = step(state, Normal("duration", "back", AT, 4), TWICE)
    assert (resolved.reason, resolved.at, resolved.index) == ("back; 2 normal runs in a row", AT, 4)
    assert state.alarms == {}


# --- one family at a time, through fold_resolving ---------------------------------------------


def runs(values: Sequence[float], per_batch: int) -> list[tuple[list[float], list[float]]]:
    """A run a minute from W0, cut in batches of ``per_batch``."""
    times = [W0 + 60 * i for i in range(len(values))]
    return [
        (list(values[i : i + per_batch]), times[i : i + per_batch])
        for i in range(0, len(values), per_batch)
    ]


def labels(
    family: str,
    batches: Sequence[tuple[Sequence[float], Sequence[float]]],
    thresholds: Thresholds = DEFAULT,
) -> list[str]:
    state, seen = SeriesState(), []
    for values, times in batches:
        state, outputs = fold_resolving(family, state, values, times, thresholds)
        seen += [label(o) for o in outputs]
    return seen


STEADY = [1000.0 + 10 * (i % 3) for i in range(12)]
SIZES = [1000.0] * 7


@pytest.mark.parametrize("per_batch", [1, 5, 1000])
@pytest.mark.parametrize(
    ("family", "values", "thresholds", "expected"),
    [
        pytest.param(DURATION, STEADY * 3, DEFAULT, [], id="duration_normal_runs_send_nothing"),
        pytest.param(
            DURATION,
            [*STEADY, 60_000.0, 1005.0],
            DEFAULT,
            ["open duration", "resolve duration"],
            id="duration_the_next_normal_run_resolves",
        ),
        pytest.param(
            DURATION,
            [*STEADY, 60_000.0, 60_000.0, 1005.0, 1000.0],
            DEFAULT,
            ["open duration", "open duration", "resolve duration"],
            id="duration_a_second_slow_run_keeps_it_open",
        ),
        pytest.param(
            DURATION,
            [*STEADY, 60_000.0, 1005.0, 1000.0],
            TWICE,
            ["open duration", "resolve duration"],
            id="duration_after_two_normal_runs",
        ),
        pytest.param(
            DURATION,
            [*STEADY, 60_000.0, 1005.0],
            TWICE,
            ["open duration"],
            id="duration_one_normal_run_is_not_two",
        ),
        pytest.param(
            DURATION,
            [*STEADY, 60_000.0, 1005.0, 61_000.0, 1000.0],
            DEFAULT,
            ["open duration", "resolve duration", "open duration", "resolve duration"],
            id="duration_open_resolve_open_resolve_in_order",
        ),
        pytest.param(
            OUTPUT_SIZE, SIZES * 3, DEFAULT, [], id="output_size_normal_runs_send_nothing"
        ),
        pytest.param(
            OUTPUT_SIZE,
            [*SIZES, 100.0, 1000.0],
            DEFAULT,
            ["open output_size", "resolve output_size"],
            id="output_size_the_next_normal_run_resolves",
        ),
        pytest.param(
            OUTPUT_SIZE,
            [*SIZES, 100.0, 250.0, 1000.0],
            DEFAULT,
            ["open output_size", "open output_size", "resolve output_size"],
            id="output_size_still_71pct_below_the_lowered_mean_keeps_it_open",
        ),
        pytest.param(
            OUTPUT_SIZE,
            [*SIZES, 100.0, 1000.0, 1000.0],
            TWICE,
            ["open output_size", "resolve output_size"],
            id="output_size_after_two_normal_runs",
        ),
    ],
)
def test_runs_resolve_on_the_next_run_the_rule_judges_normal(
    family: str, values: list[float], thresholds: Thresholds, expected: list[str], per_batch: int
) -> None:
    assert labels(family, runs(values, per_batch), thresholds) == expected


def errors(per_window: Sequence[int], per_batch: int) -> list[tuple[list[float], list[float]]]:
    """``per_window[i]`` error events a second apart in the i-th window from W0."""
    times = [W0 + 300 * w + k for w, count in enumerate(per_window) for k in range(count)]
    ones = [1.0] * len(times)
    return [
        (ones[i : i + per_batch], times[i : i + per_batch]) for i in range(0, len(ones), per_batch)
    ]


SPIKE = ["open error_rate"]
SPIKE_AND_BACK = ["open error_rate", "resolve error_rate"]


@pytest.mark.parametrize("per_batch", [1, 4, 1000])
@pytest.mark.parametrize(
    ("per_window", "thresholds", "expected"),
    [
        pytest.param([5, 5, 5, 5], DEFAULT, [], id="no_spike_no_resolve"),
        pytest.param([12, 3], DEFAULT, SPIKE, id="the_next_window_is_not_over_yet"),
        pytest.param([12, 3, 1], DEFAULT, SPIKE_AND_BACK, id="it_resolves_when_it_closes"),
        pytest.param([12, 0, 1], DEFAULT, SPIKE_AND_BACK, id="an_empty_window_is_normal"),
        pytest.param([12, 40, 1], DEFAULT, SPIKE * 2, id="a_window_that_spikes_again_does_not"),
        pytest.param([12, 40, 5, 1], DEFAULT, SPIKE * 2 + ["resolve error_rate"], id="then_one"),
        pytest.param([12, 3, 1], TWICE, SPIKE, id="k2_one_window_is_short"),
        pytest.param([12, 3, 0, 1], TWICE, SPIKE_AND_BACK, id="k2_two_windows_resolve"),
    ],
)
def test_an_error_spike_resolves_when_a_later_window_closes_below_the_spike_condition(
    per_window: list[int], thresholds: Thresholds, expected: list[str], per_batch: int
) -> None:
    assert labels(ERROR, errors(per_window, per_batch), thresholds) == expected


def requests(per_window: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    """One batch: the durations (ms) in ``per_window[i]`` a second apart in the i-th window."""
    values = [v for window in per_window for v in window]
    times = [W0 + 300 * w + k for w, window in enumerate(per_window) for k in range(len(window))]
    return values, times


QUIET = [100.0] * 5


@pytest.mark.parametrize(
    ("per_window", "expected"),
    [
        pytest.param([QUIET, QUIET, QUIET], [], id="quiet_traffic_sends_nothing"),
        pytest.param(
            [[*QUIET, 7000.0], QUIET],
            ["open slow_request"],
            id="the_window_holding_the_slow_request_does_not_resolve_it",
        ),
        pytest.param(
            [[*QUIET, 7000.0], QUIET, [100.0]],
            ["open slow_request", "resolve slow_request"],
            id="the_next_clean_window_does",
        ),
        pytest.param(
            [QUIET, [7000.0, *QUIET], [100.0]],
            ["open slow_request"],
            id="a_slow_request_that_closes_a_window_belongs_to_the_next",
        ),
        pytest.param(
            [[*QUIET, 7000.0], [*QUIET, 8000.0], QUIET, [100.0]],
            ["open slow_request", "open slow_request", "resolve slow_request"],
            id="a_slow_request_in_the_next_window_keeps_it_open",
        ),
        pytest.param(
            [[6000.0, 6000.0], QUIET, [100.0]],
            [
                "open slow_request",
                "open slow_request",
                "open slow_window",
                "resolve slow_window",
                "resolve slow_request",
            ],
            id="a_slow_window_and_its_requests_resolve_with_the_next_normal_window",
        ),
        pytest.param(
            [[6000.0, 6000.0], [4000.0, 1000.0, 7000.0], [100.0]],
            [
                "open slow_request",
                "open slow_request",
                "open slow_window",
                "open slow_request",
                "resolve slow_window",
            ],
            id="a_normal_mean_resolves_the_window_but_not_a_new_slow_request",
        ),
    ],
)
def test_slow_endpoints_resolve_when_a_later_window_closes_normal(
    per_window: list[list[float]], expected: list[str]
) -> None:
    values, times = requests(per_window)
    one_batch = labels(TRANSACTION, [(values, times)])
    one_each = labels(TRANSACTION, [([v], [t]) for v, t in zip(values, times, strict=True)])
    assert one_batch == one_each == expected


def test_fold_resolving_folds_like_fold() -> None:
    values, times = requests([[*QUIET, 7000.0], QUIET, [100.0]])
    assert fold_resolving(TRANSACTION, SeriesState(), values, times, DEFAULT)[0].window == (
        fold(TRANSACTION, SeriesState(), values, times, DEFAULT)[0].window
    )
    sizes = [*SIZES, 100.0, 1000.0]
    state, _ = fold_resolving(OUTPUT_SIZE, SeriesState(), sizes, [W0] * 9, DEFAULT)
    assert state == fold(OUTPUT_SIZE, SeriesState(), sizes, [W0] * 9, DEFAULT)[0]


# --- the reasons ----------------------------------------------------------------------------


def resolve_reason(family: str, values: list[float], times: list[float], rule: str = "") -> str:
    _, outputs = fold_resolving(family, SeriesState(), values, times, DEFAULT)
    [resolved] = [o for o in outputs if isinstance(o, Resolved) and rule in o.rule]
    return resolved.reason


def test_each_resolve_says_why_it_is_back_to_normal() -> None:
    slow = [12_000.0] * 56 + [42_000.0, 11_900.0]
    assert resolve_reason(DURATION, *runs(slow, 1000)[0]) == (
        "back to normal: took 11.9 s (mean 12.5 s, n=57)"
    )
    assert resolve_reason(OUTPUT_SIZE, *runs([*SIZES, 100.0, 1000.0], 1000)[0]) == (
        "back to normal: output 1.0 kB (mean 871 B of the last 7 runs)"
    )
    assert resolve_reason(ERROR, *errors([12, 3, 1], 1000)[0]) == (
        "back to normal: 3 errors in the 5 min window from 22:20 (baseline 12.0)"
    )
    assert resolve_reason(ERROR, *errors([12, 0, 1], 1000)[0]) == (
        "back to normal: no errors in the 5 min window from 22:20"
    )
    assert resolve_reason(TRANSACTION, *requests([[*QUIET, 7000.0], QUIET, [1.0]])) == (
        "back to normal: 5 requests in the 5 min window from 22:20, none over 5.0 s (mean 100 ms)"
    )
    windows = requests([[6000.0, 6000.0], [100.0], [1.0]])
    assert resolve_reason(TRANSACTION, *windows, "slow_window") == (
        "back to normal: mean 100 ms over 1 request in the 5 min window from 22:20"
    )


def test_a_resolve_is_timed_by_the_run_that_was_normal() -> None:
    values, times = runs([*SIZES, 100.0, 1000.0], 1000)[0]
    _, outputs = fold_resolving(OUTPUT_SIZE, SeriesState(), values, times, DEFAULT)
    resolved = outputs[-1]
    assert isinstance(resolved, Resolved)
    assert (resolved.index, resolved.at) == (8, datetime.fromtimestamp(times[8], UTC))


# --- the emit timer -------------------------------------------------------------------------


def spiked(thresholds: Thresholds = DEFAULT) -> SeriesState:
    state, outputs = fold_resolving(ERROR, SeriesState(), *errors([12], 1000)[0], thresholds)
    assert [label(o) for o in outputs] == SPIKE
    return state


@pytest.mark.parametrize(
    ("ticks_after_w0_s", "thresholds", "resolves_at_tick"),
    [
        pytest.param([60, 299], DEFAULT, [], id="not_while_the_spike_window_is_open"),
        pytest.param([300, 599], DEFAULT, [], id="not_when_only_the_spike_window_closed"),
        pytest.param([300, 600], DEFAULT, [1], id="when_the_next_window_closed_empty"),
        pytest.param([900], DEFAULT, [0], id="at_once_after_a_long_silence"),
        pytest.param([600, 601, 899], TWICE, [], id="k2_a_window_is_not_counted_twice"),
        pytest.param([600, 900], TWICE, [1], id="k2_two_empty_windows"),
    ],
)
def test_the_timer_resolves_an_error_spike_without_a_further_error(
    ticks_after_w0_s: list[float], thresholds: Thresholds, resolves_at_tick: list[int]
) -> None:
    state, seen = spiked(thresholds), []
    for i, after in enumerate(ticks_after_w0_s):
        state, outputs = tick_resolving(ERROR, state, W0 + after, thresholds)
        seen += [i for o in outputs if isinstance(o, Resolved)]
    assert seen == resolves_at_tick


def test_a_window_judged_by_the_timer_is_not_judged_again_when_an_error_closes_it() -> None:
    state = spiked(TWICE)
    state, outputs = tick_resolving(ERROR, state, W0 + 600, TWICE)  # window 1: empty, normal
    assert outputs == [] and state.recovery.alarms["error_rate"].normal == 1
    state, outputs = fold_resolving(ERROR, state, [1.0], [W0 + 601], TWICE)  # closes 0 and 1
    assert outputs == [] and state.recovery.alarms["error_rate"].normal == 1
    state, outputs = tick_resolving(ERROR, state, W0 + 900, TWICE)  # window 2: 1 error
    assert [label(o) for o in outputs] == ["resolve error_rate"]
    assert state.recovery == Recovery()


def test_the_timer_leaves_a_quiet_series_alone_and_returns_the_same_state() -> None:
    state, _ = fold_resolving(ERROR, SeriesState(), *errors([5], 1000)[0], DEFAULT)
    assert tick_resolving(ERROR, state, W0 + 3600, DEFAULT) == (state, [])
    assert tick_resolving(ERROR, state, W0 + 3600, DEFAULT)[0] is state
    armed = spiked()
    assert tick_resolving(ERROR, armed, W0 + 100, DEFAULT)[0] is armed
    for family in (DURATION, OUTPUT_SIZE):
        assert tick_resolving(family, armed, W0 + 3600, DEFAULT)[0] is armed


def test_the_timer_closes_a_slow_window_and_resolves_it_at_the_next_close() -> None:
    state, _ = fold_resolving(TRANSACTION, SeriesState(), [6000.0], [W0], DEFAULT)
    state, outputs = tick_resolving(TRANSACTION, state, W0 + 300, DEFAULT)
    assert [label(o) for o in outputs] == ["open slow_window"]
    state, outputs = fold_resolving(TRANSACTION, state, [100.0], [W0 + 310], DEFAULT)
    assert outputs == []
    state, outputs = tick_resolving(TRANSACTION, state, W0 + 600, DEFAULT)
    assert [label(o) for o in outputs] == ["resolve slow_window", "resolve slow_request"]
    assert state.recovery == Recovery()


def test_a_window_reopened_by_a_late_request_is_not_judged_twice() -> None:
    state, _ = fold_resolving(TRANSACTION, SeriesState(), [6000.0], [W0], TWICE)
    state, _ = fold_resolving(TRANSACTION, state, [100.0], [W0 + 310], TWICE)  # closes window 0
    state, _ = tick_resolving(TRANSACTION, state, W0 + 600, TWICE)  # window 1: normal, 1 of 2
    assert state.recovery.alarms["slow_window"].normal == 1
    state, _ = fold_resolving(TRANSACTION, state, [90.0], [W0 + 320], TWICE)  # late, window 1
    state, outputs = tick_resolving(TRANSACTION, state, W0 + 601, TWICE)
    assert outputs == [] and state.recovery.alarms["slow_window"].normal == 1


@pytest.mark.parametrize(
    ("recent", "value", "judged_normal"),
    [
        ([1000.0] * 6, 1000.0, False),  # not judged: six runs are not enough
        ([1000.0] * 7, 1000.0, True),
        ([1000.0] * 7, 310.0, True),  # 69% below
        ([1000.0] * 7, 290.0, False),  # 71% below: a drop
    ],
)
def test_size_normal_is_the_output_size_rule_coming_out_false(
    recent: list[float], value: float, judged_normal: bool
) -> None:
    found = size_normal(RecentState(tuple(recent)), value, AT, 0, DEFAULT)
    assert (found is not None) is judged_normal


@pytest.mark.parametrize(
    ("count", "past", "normal_windows"),
    [
        (12, (), []),  # the closed window was a spike
        (9, (), [5]),  # under the minimum count
        (16, (5,), []),  # over 3x the baseline 5
        (15, (5, 5, 5, 0, 10), [5]),  # not over 3x the baseline 5.0 (15 > 15 is false)
    ],
)
def test_error_closed_judges_the_closed_window_by_the_spike_condition(
    count: int, past: tuple[int, ...], normal_windows: list[int]
) -> None:
    state = WindowState(window=5, count=count, past=past)
    normals, through = error_closed(state, 6, None, AT, 0, DEFAULT)
    assert [n.window for n in normals] == normal_windows and through == 5


def test_error_closed_counts_at_most_resolve_after_empty_windows_but_judges_through_all() -> None:
    state = WindowState(window=5, count=12)
    normals, through = error_closed(state, 10**9, None, AT, 0, TWICE)
    assert [n.window for n in normals] == [6, 7] and through == 10**9 - 1
    normals, through = error_closed(state, 9, 7, AT, 0, TWICE)
    assert [n.window for n in normals] == [8] and through == 8


@pytest.mark.parametrize(
    ("values_ms", "normal_rules"),
    [
        ([4000.0, 6000.0], ["slow_window", "slow_request"]),  # mean 5.0 s: not over
        ([4000.0, 6100.0], []),  # mean 5.05 s: a slow window
    ],
)
def test_slow_closed_judges_the_window_by_its_mean(
    values_ms: list[float], normal_rules: list[str]
) -> None:
    state = WindowState(window=5, count=len(values_ms), total=sum(values_ms))
    normals, through = slow_closed(state, None, AT, 0, DEFAULT)
    assert [n.rule for n in normals] == normal_rules and through == 5
    assert slow_closed(state, 5, AT, 0, DEFAULT) == ([], 5)  # judged already


# --- state in the changelog -----------------------------------------------------------------

BEFORE_AUTO_RESOLVE = {  # a series state document as written before this feature
    "duration": {
        "stats": {"count": 0, "origin": 0.0, "offset": 0.0, "m2": 0.0, "min": None, "max": None},
        "sketch": SeriesState().duration.sketch.to_dict(),
    },
    "recent": {"recent": [1000.0, 1000.0]},
    "window": {"window": None, "count": 0, "total": 0.0, "alerted": False, "past": []},
}


def test_a_document_without_alarms_reads_as_none_armed_and_is_written_the_same() -> None:
    state = SeriesState.from_dict(BEFORE_AUTO_RESOLVE)
    assert state.recovery == Recovery()
    assert state.recent.recent == (1000.0, 1000.0)
    assert state.to_dict() == BEFORE_AUTO_RESOLVE


def test_armed_alarms_survive_a_json_round_trip() -> None:
    state, _ = fold_resolving(TRANSACTION, SeriesState(), [6000.0, 100.0], [W0, W0 + 300], DEFAULT)
    assert set(state.recovery.alarms) == {"slow_request", "slow_window"}
    doc = json.loads(json.dumps(state.to_dict(), allow_nan=False))
    assert doc["recovery"]["through"] == state.recovery.through
    assert SeriesState.from_dict(doc) == state
    # once resolved the alarms are forgotten and the document is as before
    state, _ = fold_resolving(TRANSACTION, state, [100.0], [W0 + 600], DEFAULT)
    assert "recovery" not in state.to_dict()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [({"resolve_after": 3}, 3), ({"resolve_after": "2"}, 2), ({}, 1)],
)
def test_resolve_after_is_a_threshold(overrides: dict[str, object], expected: int) -> None:
    assert DEFAULT.with_overrides(overrides).resolve_after == expected


@pytest.mark.parametrize("bad", [0, 1.5, -1, True])
def test_a_bad_resolve_after_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"threshold .resolve_after. must be"):
        DEFAULT.with_overrides({"resolve_after": bad})


# --- through the book -----------------------------------------------------------------------


def signals(key: SeriesKey, outputs: list[Found | Resolved]) -> list[IncidentSignal]:
    """The signals the stats agent sends for ``outputs`` (as ``publish`` builds them)."""
    sent = []
    for output in outputs:
        if isinstance(output, Resolved):
            request = ResolveRequest(dedup_key(key, output.rule), output.reason)
            sent.append(signal_of(request, output.at, key.project_id))
        else:
            anomaly = output.anomaly
            opening = IncidentRequest(
                project_id=key.project_id,
                kind=INCIDENT_KINDS[anomaly.rule],
                severity=Severity.WARNING,
                dedup_key=dedup_key(key, anomaly.rule),
                title=title(key, anomaly.rule),
                explanation=anomaly.explanation,
            )
            sent.append(signal_of(opening, anomaly.at))
    return sent


def test_the_book_opens_then_resolves_the_incident_with_the_reason() -> None:
    key = SeriesKey(1, OUTPUT_SIZE, "export")
    values, times = runs([*SIZES, 100.0, 1000.0], 1000)[0]
    _, outputs = fold_resolving(OUTPUT_SIZE, SeriesState(), values, times, DEFAULT)
    book = IncidentBook()
    records = [apply_signal(book, s) for s in signals(key, outputs)]
    assert [r.state if r else None for r in records] == [
        IncidentState.OPEN,
        IncidentState.RESOLVED,
    ]
    assert records[0] is not None and records[1] is not None
    assert records[1].id == records[0].id
    assert records[1].dedup_key == "anomaly:1:output_size:check_in.output_size:export"
    assert (
        records[1].resolve_reason == "back to normal: output 1.0 kB (mean 871 B of the last 7 runs)"
    )
    assert book.get(records[0].dedup_key) is None


def test_a_resolve_for_an_incident_that_is_not_open_changes_nothing() -> None:
    key = SeriesKey(1, DURATION, "backup")
    book = IncidentBook()
    signal = signal_of(ResolveRequest(dedup_key(key, "duration"), "back"), AT, 1)
    assert apply_signal(book, signal) is None
    assert len(book.store) == 0
    dedup = dedup_key(key, "duration")
    opened = IncidentRequest(1, INCIDENT_KINDS["duration"], Severity.WARNING, dedup, "t", "e")
    book.open(opened, AT)
    book.resolve(opened.dedup_key, AT + timedelta(minutes=1), "by hand")
    assert apply_signal(book, signal) is None
