"""Sentry payloads → EventIn dicts: field names, shapes Sentry varies, None dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from ingest_gateway.sentry.mapping import (
    check_in_event,
    error_event,
    to_datetime,
    transaction_event,
)
from pulseline.schemas import EventIn

HEX = "9ec79c33ec9942ab8353589fcb2e04dc"


def test_an_error_event_maps_exception_frames_and_context() -> None:
    event = {
        "event_id": HEX,
        "timestamp": 1700000000.5,
        "release": "r1",
        "environment": "prod",
        "platform": "python",
        "level": "error",
        "logger": "app",
        "user": {"email": "a@b.c", "ip_address": "1.2.3.4"},
        "tags": [["browser", "Firefox"], ["os", "Linux"]],
        "breadcrumbs": {"values": [{"message": "clicked"}]},
        "fingerprint": ["{{ default }}"],
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "value": "'x'",
                    "module": None,
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "app.py",
                                "abs_path": "/srv/app.py",
                                "function": "main",
                                "module": "app",
                                "lineno": 3,
                                "colno": None,
                                "in_app": True,
                                "vars": {"secret": "dropped"},
                            },
                            "not a frame",
                        ]
                    },
                }
            ]
        },
        "sdk": {"name": "sentry.python"},
    }
    mapped = error_event(event)
    assert mapped["kind"] == "error"
    assert mapped["event_id"] == UUID(HEX)
    assert mapped["timestamp"] == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    assert mapped["distinct_id"] == "a@b.c"
    attrs = mapped["attributes"]
    assert attrs["exception"] == [
        {
            "type": "KeyError",
            "value": "'x'",
            "mechanism": {"type": "generic", "handled": True},
            "stacktrace": {
                "frames": [
                    {
                        "filename": "app.py",
                        "abs_path": "/srv/app.py",
                        "function": "main",
                        "module": "app",
                        "lineno": 3,
                        "in_app": True,
                    }
                ]
            },
        }
    ]
    assert attrs["tags"] == {"browser": "Firefox", "os": "Linux"}
    assert attrs["breadcrumbs"] == [{"message": "clicked"}]
    assert attrs["sdk"] == {"name": "sentry.python"}
    assert "message" not in attrs and "request" not in attrs and "contexts" not in attrs
    EventIn.model_validate(mapped)


def test_a_message_event_takes_its_text_from_message_or_logentry() -> None:
    assert error_event({"message": "plain"})["attributes"]["message"] == "plain"
    logentry = {"logentry": {"message": "x %s", "formatted": "x 1"}}
    assert error_event(logentry)["attributes"]["message"] == "x 1"
    assert error_event({"message": {"message": "m"}})["attributes"]["message"] == "m"


def test_a_bad_event_id_falls_back_and_long_user_ids_are_cut() -> None:
    raw = {"event_id": "nope", "message": "m", "user": {"id": "u" * 500}}
    mapped = error_event(raw, fallback_id=HEX)
    assert mapped["event_id"] == UUID(HEX)
    assert mapped["distinct_id"] == "u" * 200
    assert "event_id" not in error_event({"event_id": 5})
    EventIn.model_validate(mapped)


def test_a_transaction_maps_name_op_timing_trace_and_status() -> None:
    event = {
        "type": "transaction",
        "transaction": "GET /items",
        "start_timestamp": "2024-05-01T10:00:00Z",
        "timestamp": "2024-05-01T10:00:01.250000",
        "request": {"method": "GET"},
        "contexts": {
            "trace": {
                "op": "http.server",
                "status": "ok",
                "trace_id": "a" * 32,
                "span_id": "b" * 16,
            },
        },
        "tags": {"http.status_code": "201"},
        "spans": [{}, {}],
    }
    mapped = transaction_event(event)
    assert mapped["kind"] == "transaction"
    assert mapped["attributes"] == {
        "name": "GET /items",
        "op": "http.server",
        "method": "GET",
        "status": "ok",
        "start": "2024-05-01T10:00:00Z",
        "duration_ms": 1250.0,
        "trace_id": "a" * 32,
        "span_id": "b" * 16,
        "http_status": 201,
        "spans_count": 2,
    }
    event["contexts"]["response"] = {"status_code": 404}  # type: ignore[index]
    assert transaction_event(event)["attributes"]["http_status"] == 404
    EventIn.model_validate(mapped)


def test_deep_stacks_long_crumbs_and_odd_tags_are_trimmed_to_what_the_family_allows() -> None:
    frames = [{"function": f"f{i}"} for i in range(1000)]
    event = {
        "exception": {"values": [{"type": "RecursionError", "stacktrace": {"frames": frames}}]},
        "breadcrumbs": [{"message": str(i)} for i in range(150)],
        "tags": {"attempt": 3, "ok": True, "skip": None, "k" * 300: "v"},
        "fingerprint": ["{{ default }}", 7, None],
    }
    attrs = error_event(event)["attributes"]
    kept = [f["function"] for f in attrs["exception"][0]["stacktrace"]["frames"]]
    assert kept == [f"f{i}" for i in (*range(125), *range(875, 1000))]
    assert [b["message"] for b in attrs["breadcrumbs"]] == [str(i) for i in range(50, 150)]
    assert attrs["tags"] == {"attempt": "3", "ok": "True", "k" * 200: "v"}
    assert attrs["fingerprint"] == ["{{ default }}", "7"]
    EventIn.model_validate(error_event(event))


def test_a_malformed_trace_id_or_status_code_is_dropped_not_the_transaction() -> None:
    event = {
        "transaction": "t",
        "start_timestamp": 0,
        "timestamp": 1,
        "contexts": {
            "trace": {"trace_id": "t" * 32, "span_id": "s"},
            "response": {"status_code": 9},
        },
    }
    attrs = transaction_event(event)["attributes"]
    assert "trace_id" not in attrs and "span_id" not in attrs and "http_status" not in attrs
    EventIn.model_validate(transaction_event(event))


def test_check_in_statuses_and_duration() -> None:
    base = {"check_in_id": HEX, "monitor_slug": "nightly", "environment": "prod"}
    assert check_in_event({**base, "status": "in_progress"}) == {
        "kind": "check_in",
        "environment": "prod",
        "attributes": {"monitor": "nightly", "status": "start", "run_id": HEX},
    }
    done = check_in_event({**base, "status": "ok", "duration": 2.5, "release": "r"})
    assert done["attributes"]["status"] == "ok"
    assert done["attributes"]["duration_ms"] == 2500
    assert done["release"] == "r"
    assert check_in_event({**base, "status": "error"})["attributes"]["status"] == "fail"
    EventIn.model_validate(done)


def test_timestamps_parse_from_epoch_or_iso_and_bad_ones_are_none() -> None:
    assert to_datetime(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert to_datetime("2024-01-01T00:00:00+02:00") == datetime(2023, 12, 31, 22, tzinfo=UTC)
    assert to_datetime("yesterday") is None
    assert to_datetime(1e300) is None
    assert to_datetime(True) is None
