"""Pure view helpers: relative times, pinned monitors, health counts, timeline, frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pulseline.control.entities import Monitor
from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from storage.dashboard import views
from storage.dashboard.session import grant
from storage.read_common import ProjectKey

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=5), "5 s ago"),
        (timedelta(minutes=3, seconds=59), "3 min ago"),
        (timedelta(hours=2), "2 h ago"),
        (timedelta(days=3), "3 d ago"),
        (-timedelta(hours=1), "in 1 h"),
    ],
)
def test_ago_reads_coarsely(delta: timedelta, text: str) -> None:
    assert views.ago(NOW - delta, NOW) == text


def test_ago_of_nothing_is_never() -> None:
    assert views.ago(None, NOW) == "never"


def monitor(id_: str, name: str, state: str) -> dict[str, Any]:
    return {"monitor_id": id_, "name": name, "state": state}


def test_down_and_late_are_pinned_and_keep_their_order_when_late_turns_down() -> None:
    rows = [monitor("a", "alpha", "up"), monitor("b", "beta", "late"), monitor("c", "cron", "down")]
    order = [m["monitor_id"] for m in views.pinned_first(rows)]
    assert order == ["b", "c", "a"]
    rows[1]["state"] = "down"
    assert [m["monitor_id"] for m in views.pinned_first(rows)] == order


def test_health_counts_states_and_new_issues_and_flags_a_full_page() -> None:
    monitors = [monitor("a", "a", "down"), monitor("b", "b", "up"), monitor("c", "c", "up")]
    issues = [{"first_seen": NOW - timedelta(hours=2)}, {"first_seen": NOW - timedelta(days=9)}]
    h = views.health(monitors, [{}], issues, NOW, page_limit=3)
    assert (h.open_incidents, h.unresolved_issues, h.new_issues, h.down) == (1, 2, 1, 1)
    assert h.monitors["up"] == 2 and h.more is True


@pytest.mark.parametrize(("down", "shown"), [(0, None), (3, ">3<"), (12, ">9+<")])
def test_favicon_is_green_or_red_with_the_count(down: int, shown: str | None) -> None:
    icon = views.favicon(down)
    assert icon.startswith("data:image/svg+xml,")
    assert ("%23d93a3a" in icon) is (down > 0)
    if shown:
        assert shown in icon


def test_timeline_places_incidents_in_the_window_and_drops_older_ones() -> None:
    rows: list[dict[str, Any]] = [
        {"opened_at": NOW - timedelta(hours=6), "resolved_at": NOW - timedelta(hours=3)},
        {"opened_at": NOW - timedelta(hours=30), "resolved_at": NOW - timedelta(hours=25)},
        {"opened_at": NOW - timedelta(hours=30), "resolved_at": None},
    ]
    marks = views.timeline(rows, NOW)
    assert [(m.left, m.width) for m in marks] == [(0.0, 100.0), (75.0, 12.5)]


def test_next_runs_follow_the_cron_in_the_monitor_zone_across_a_dst_change() -> None:
    m = Monitor.model_validate(
        {
            "id": "m",
            "project_id": 1,
            "name": "n",
            "slug": "n",
            "schedule": {"cron": "0 3 * * *", "tz": "Europe/Berlin"},
        }
    )
    runs = views.next_runs(m, NOW - timedelta(days=1), 3)
    assert [views.in_zone(r, "Europe/Berlin")[11:] for r in runs] == [
        "03:00:00 CET",
        "03:00:00 CEST",
        "03:00:00 CEST",
    ]


def test_frames_come_innermost_first_and_tolerate_missing_parts() -> None:
    attributes = {
        "exception": {
            "values": [{"stacktrace": {"frames": [{"function": "a"}, {"function": "b"}]}}]
        }
    }
    assert [f["function"] for f in views.frames(attributes)] == ["b", "a"]
    assert views.frames({}) == [] and views.frames({"exception": "text"}) == []


def test_grant_applies_the_read_api_rules() -> None:
    ring = StaticKeyRing()
    read, ingest, admin = new_key(Scope.READ), new_key(Scope.INGEST), new_key(Scope.ADMIN)
    ring.add(read, ApiKey(7, Scope.READ))
    ring.add(ingest, ApiKey(7, Scope.INGEST))
    ring.add(admin, ApiKey(None, Scope.ADMIN))
    assert grant(ring, f" {read} ") == ProjectKey(7, Scope.READ)
    assert "cannot read" in str(grant(ring, ingest))
    assert "spans projects" in str(grant(ring, admin))
    assert "unknown" in str(grant(ring, new_key(Scope.READ)))
    assert grant(ring, "") == "Enter a read key."
