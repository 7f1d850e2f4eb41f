"""Flapping protection: which monitor-failure transitions a channel is not told of."""

from __future__ import annotations

from typing import Any

import pytest

from alerting.noise import held_back
from tests.unit.test_alert_incident import incident

FAILED = {"kind": "monitor_failed"}

CASES: list[tuple[str, dict[str, Any], int, bool, bool]] = [
    ("threshold 1: the first failure alerts", {**FAILED, "occurrences": 1}, 1, False, False),
    ("threshold 3: the first failure waits", {**FAILED, "occurrences": 1}, 3, False, True),
    ("threshold 3: the second failure waits", {**FAILED, "occurrences": 2}, 3, False, True),
    ("threshold 3: the third failure alerts", {**FAILED, "occurrences": 3}, 3, False, False),
    ("threshold 3: a later failure is not held", {**FAILED, "occurrences": 7}, 3, False, False),
    (
        "a resolve after a held-back opening is held back",
        {**FAILED, "state": "resolved", "occurrences": 2},
        3,
        False,
        True,
    ),
    (
        "an ack after a held-back opening is held back",
        {**FAILED, "state": "acked", "occurrences": 5},
        3,
        False,
        True,
    ),
    (
        "a resolve after a told opening is sent",
        {**FAILED, "state": "resolved", "occurrences": 3},
        3,
        True,
        False,
    ),
    (
        "a resolve told of its opening under a lower threshold is sent",
        {**FAILED, "state": "resolved", "occurrences": 1},
        3,
        True,
        False,
    ),
    (
        "threshold 1 never holds a resolve back",
        {**FAILED, "state": "resolved", "occurrences": 1},
        1,
        False,
        False,
    ),
    ("a missed check-in alerts at once", {"kind": "monitor_missed"}, 3, False, False),
    ("other kinds are never held back", {"kind": "error_spike"}, 5, False, False),
]


@pytest.mark.parametrize(
    ("overrides", "threshold", "open_notified", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_a_monitor_failure_alerts_only_after_threshold_failures_in_a_row(
    overrides: dict[str, Any], threshold: int, open_notified: bool, expected: bool
) -> None:
    assert held_back(incident(**overrides), threshold, open_notified) is expected
