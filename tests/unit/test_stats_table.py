from __future__ import annotations

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
    table.write(1, "7|metric|queue", a_state())
    assert raw.sent == [(1, "7|metric|queue", a_state().to_dict(), "json", "json")]
    assert raw.data["7|metric|queue"] == a_state().to_dict()


def test_an_unknown_series_starts_empty_and_a_restored_one_is_decoded() -> None:
    raw = RecordingTable()
    table = SeriesTable(raw)
    assert table.state("7|metric|queue") == SeriesState()
    raw.data["7|metric|queue"] = a_state().to_dict()  # as recovery from the changelog would
    assert table.state("7|metric|queue") == a_state()


def test_a_cached_state_is_dropped_once_recovery_replaces_the_document() -> None:
    raw = RecordingTable()
    table = SeriesTable(raw)
    table.write(0, "k", a_state())
    assert table.state("k") is table.cache["k"][1]
    raw.data["k"] = SeriesState().to_dict()
    assert table.state("k") == SeriesState()


def test_the_offset_mark_is_minus_one_until_written_then_what_was_put() -> None:
    raw = RecordingTable()
    table = SeriesTable(raw)
    assert table.mark(0) == -1
    table.put(0, "offset|0", 41)
    assert table.mark(0) == 41 and table.mark(1) == -1
    assert raw.sent[-1][:3] == (0, "offset|0", 41)
