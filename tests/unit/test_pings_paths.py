"""Ping URL parsing and the ping → check_in mapping (both pure)."""

from __future__ import annotations

import pytest

from ingest_gateway.pings.event import PingBody, check_in, status_of
from ingest_gateway.pings.paths import BySlug, ByUuid, parse

UUID = "5f9e2c1a-0b6d-4c1e-9a8b-0123456789ab"


@pytest.mark.parametrize(
    ("rest", "target"),
    [
        (UUID, ByUuid(UUID)),
        (f"{UUID}/", ByUuid(UUID)),
        (f"{UUID}/start", ByUuid(UUID, "start")),
        (f"{UUID}/fail", ByUuid(UUID, "fail")),
        (f"{UUID}/log", ByUuid(UUID, "log")),
        (f"{UUID}/0", ByUuid(UUID, "success", 0)),
        (f"{UUID}/256", ByUuid(UUID, "success", 256)),
        ("key_Key-1234567890/nightly", BySlug("key_Key-1234567890", "nightly")),
        ("k/nightly/start", BySlug("k", "nightly", "start")),
        ("k/nightly/fail", BySlug("k", "nightly", "fail")),
        ("k/nightly/log", BySlug("k", "nightly", "log")),
        ("k/nightly/3", BySlug("k", "nightly", "success", 3)),
        # A UUID followed by something that is no suffix reads as ping key + slug.
        (f"{UUID}/nightly", BySlug(UUID, "nightly")),
        (f"{UUID}/-1", BySlug(UUID, "-1")),
    ],
)
def test_it_parses_every_url_form(rest: str, target: object) -> None:
    assert parse(rest) == target


@pytest.mark.parametrize(
    "rest",
    [
        "",
        "not-a-uuid",
        UUID.upper(),
        f"{UUID}/start/",
        "k/nightly/",
        "k/nightly/bogus",
        "k/night.ly",
        "k/nightly/start/extra",
    ],
)
def test_it_matches_no_route_where_healthchecks_matches_none(rest: str) -> None:
    assert parse(rest) is None


@pytest.mark.parametrize(
    ("action", "exit_status", "status"),
    [
        ("success", None, "ok"),
        ("success", 0, "ok"),
        ("success", 1, "fail"),
        ("start", None, "start"),
        ("fail", None, "fail"),
        ("log", None, "log"),
    ],
)
def test_status_follows_action_and_exit_status(
    action: str, exit_status: int | None, status: str
) -> None:
    assert status_of(action, exit_status) == status  # type: ignore[arg-type]


def test_check_in_leaves_out_absent_exit_code_and_run_id() -> None:
    event = check_in(
        monitor_slug="nightly",
        monitor_id=UUID,
        status="ok",
        exit_code=None,
        run_id=None,
        body=PingBody("héllo".encode(), 6),
        method="GET",
        user_agent="curl/8",
    )
    assert event == {
        "kind": "check_in",
        "distinct_id": None,
        "attributes": {
            "monitor": "nightly",
            "monitor_id": UUID,
            "status": "ok",
            "output": "héllo",
            "output_size": 6,
            "source": "ping",
            "method": "GET",
            "user_agent": "curl/8",
        },
    }


def test_check_in_replaces_bytes_that_are_not_utf8() -> None:
    event = check_in(
        monitor_slug="m",
        monitor_id=UUID,
        status="fail",
        exit_code=2,
        run_id=UUID,
        body=PingBody(b"ok\xff", 3),
        method="POST",
        user_agent="",
    )
    assert event["attributes"]["output"] == "ok\ufffd"
    assert event["attributes"]["exit_code"] == 2
    assert event["attributes"]["run_id"] == UUID
