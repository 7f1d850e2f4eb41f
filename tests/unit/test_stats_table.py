from __future__ import annotations

import time
from typing import Any

from stream_processors.agents.stats import SeriesTable
from stream_processors.logic.series import SeriesState, fold
from stream_processors.logic.thresholds import Thresholds


class RecordingTable:
    """In-memory twin of a Faust table: a dict store and the changelog sends it asked for."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.sent: list[tuple[int, str, Any, str, str]] = []

    def send_changelog(self, partition: int, key: str, value: Any, ks: str, vs: str) -> None:
        self.sent.append((partition, key, value, ks, vs))


def a_state() -> SeriesState:
    state, _ = fold("metric", SeriesState(), [1.0, 2.0], [0.0, 0.0], Thresholds())
    return state


def test_a_write_goes_to_the_named_changelog_partition_as_json() -> None:
    raw = RecordingTable()
    table = SeriesTable(raw)
    before = time.time()
    table.write(1, "7|metric|queue", a_state(), {"ingest.metric:3": 12})
    [(partition, key, doc, ks, vs)] = raw.sent
    assert (partition, key, ks, vs) == (1, "7|metric|queue", "json", "json")
    assert doc["state"] == a_state().to_dict() and doc["marks"] == {"ingest.metric:3": 12}
    assert before <= doc["at"] <= time.time()
    assert raw.data["7|metric|queue"] is doc


def test_an_unknown_series_starts_empty_and_a_restored_one_is_decoded() -> None:
    raw = RecordingTable()
    table = SeriesTable(raw)
    assert table.state("7|metric|queue") == SeriesState()
    raw.data["7|metric|queue"] = {"state": a_state().to_dict(), "marks": {}}  # as recovered
    assert table.state("7|metric|queue") == a_state()


def test_a_cached_state_is_dropped_once_recovery_replaces_the_document() -> None:
    raw = RecordingTable()
    table = SeriesTable(raw)
    table.write(0, "k", a_state())
    assert table.state("k") is table.cache["k"][1]
    raw.data["k"] = {"state": SeriesState().to_dict(), "marks": {}}
    assert table.state("k") == SeriesState()


def test_marks_start_empty_and_a_write_without_marks_keeps_the_stored_ones() -> None:
    raw = RecordingTable()
    table = SeriesTable(raw)
    assert table.marks("k") == {}
    table.write(0, "k", a_state(), {"ingest.metric:0": 41})
    table.write(0, "k", a_state())  # the timer's write: no new points
    assert table.marks("k") == {"ingest.metric:0": 41}
    assert raw.sent[-1][2]["marks"] == {"ingest.metric:0": 41}
