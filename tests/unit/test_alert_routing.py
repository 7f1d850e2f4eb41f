from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from alerting.routing import route
from pulseline.control.entities import AlertRule, Channel, MaintenanceWindow
from tests.unit.test_alert_incident import T0, incident

CHANNELS = {
    cid: Channel(id=cid, project_id=pid, name=cid, slug=cid, type="webhook", disabled=off)
    for cid, pid, off in [("a", 7, False), ("b", 7, False), ("off", 7, True), ("other", 8, False)]
}


def rule(**overrides: Any) -> AlertRule:
    base: dict[str, Any] = {"id": "r", "project_id": 7, "name": "r", "slug": "r", "channels": ["a"]}
    return AlertRule(**{**base, **overrides})


CASES = [
    ("a rule with no filters matches everything", rule(), {}, ["a"]),
    ("a rule of another project never matches", rule(project_id=8), {}, []),
    ("a matching kind matches", rule(kinds=["monitor_down"]), {}, ["a"]),
    ("another kind does not match", rule(kinds=["error_spike"]), {}, []),
    ("a listed severity matches", rule(severities=["critical", "error"]), {}, ["a"]),
    ("an unlisted severity does not", rule(severities=["info"]), {}, []),
    ("a shared tag matches", rule(tags=["db", "x"]), {"tags": ["db"]}, ["a"]),
    ("no shared tag does not match", rule(tags=["x"]), {"tags": ["db"]}, []),
    ("a listed monitor matches", rule(monitors=["mon-1"]), {"monitor_id": "mon-1"}, ["a"]),
    ("an incident without monitor skips monitor rules", rule(monitors=["mon-1"]), {}, []),
    ("a muted rule is skipped", rule(muted_until=T0 + timedelta(minutes=1)), {}, []),
    ("a mute that ended no longer applies", rule(muted_until=T0), {}, ["a"]),
    ("disabled channels are dropped", rule(channels=["off", "b"]), {}, ["b"]),
    ("channels of another project are dropped", rule(channels=["other"]), {}, []),
    ("unknown channel ids are dropped", rule(channels=["ghost", "a"]), {}, ["a"]),
]


@pytest.mark.parametrize(
    ("rule_", "fields", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_routing_applies_each_filter(
    rule_: AlertRule, fields: dict[str, Any], expected: list[str]
) -> None:
    assert route(incident(**fields), [rule_], CHANNELS, now=T0) == expected


def test_several_rules_give_each_channel_once_in_first_seen_order() -> None:
    rules = [rule(channels=["b", "a"]), rule(id="r2", channels=["a", "b"])]
    assert route(incident(), rules, CHANNELS, now=T0) == ["b", "a"]


@pytest.mark.parametrize(
    ("offset_min", "expected"),
    [(-1, ["a"]), (0, []), (59, []), (60, ["a"])],
)
def test_a_maintenance_window_silences_its_monitor_from_start_until_end(
    offset_min: int, expected: list[str]
) -> None:
    window = MaintenanceWindow(start=T0, end=T0 + timedelta(hours=1))
    now = T0 + timedelta(minutes=offset_min)
    assert route(incident(), [rule()], CHANNELS, now=now, maintenance=[window]) == expected
