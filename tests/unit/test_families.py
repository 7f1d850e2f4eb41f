"""Each family's attributes: what is accepted, what is refused and the field it names."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pulseline.families import FAMILIES, MAX_FRAMES, MAX_TAGS, EventKind
from pulseline.schemas import EventIn

FRAME = {"filename": "app.py", "function": "main", "lineno": 3, "colno": 1, "in_app": True}

VALID: list[tuple[str, dict[str, Any]]] = [
    ("error", {"message": "boom", "level": "error", "tags": {"os": "linux"}}),
    (
        "error",
        {
            "exception": [{"type": "KeyError", "value": "'x'", "stacktrace": {"frames": [FRAME]}}],
            "breadcrumbs": [{"timestamp": 1700000000.5, "message": "clicked", "data": {}}],
            "fingerprint": ["{{ default }}", "db"],
        },
    ),
    ("transaction", {"name": "GET /items", "duration_ms": 12.5, "status": "ok"}),
    (
        "transaction",
        {
            "route": "/items/:id",
            "duration_ms": 0,
            "status": 200,
            "http_status": 200,
            "start": "2026-01-02T03:04:05Z",
            "trace_id": "a" * 32,
            "span_id": "B" * 16,
        },
    ),
    ("pageview", {"url": "https://x.test/a?b=1", "screen": "1920x1080", "utm_source": "news"}),
    ("event", {"name": "click", "properties": {"selector": "#buy", "tag": "button"}}),
    ("web_vital", {"name": "CLS", "value": 0.02, "rating": "good", "path": "/"}),
    ("check_in", {"monitor": "nightly", "status": "fail", "exit_code": 255, "output_size": 0}),
    ("metric", {"name": "cpu", "value": -1.5, "type": "counter", "tags": {"host": "a"}}),
]


@pytest.mark.parametrize(("kind", "attributes"), VALID)
def test_a_well_formed_family_passes_and_keeps_what_was_sent(
    kind: str, attributes: dict[str, Any]
) -> None:
    event = EventIn.model_validate({"kind": kind, "attributes": {**attributes, "extra": [1]}})

    assert event.attributes["extra"] == [1]
    assert {k: event.attributes[k] for k in attributes} == attributes


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("error", {}, "attributes: Value error, an error needs an exception or a message"),
    ("error", {"message": "m", "level": "loud"}, "attributes.level: Input should be 'fatal'"),
    ("error", {"message": "m", "tags": {"n": 1}}, "attributes.tags.n: Input should be a valid str"),
    ("error", {"exception": [{"module": "m"}]}, "attributes.exception.0: Value error, an exc"),
    (
        "error",
        {"exception": [{"type": "E", "stacktrace": {"frames": [FRAME] * (MAX_FRAMES + 1)}}]},
        "attributes.exception.0.stacktrace.frames: List should have at most 250 items",
    ),
    ("error", {"message": "m" * 8193}, "attributes.message: String should have at most 8192"),
    ("transaction", {"name": "t"}, "attributes.duration_ms: Field required"),
    ("transaction", {"duration_ms": 1}, "attributes: Value error, a transaction needs a name"),
    ("transaction", {"name": "t", "duration_ms": -1}, "attributes.duration_ms: Input should be"),
    ("transaction", {"name": "t", "duration_ms": "5"}, "attributes.duration_ms: Input should be a"),
    ("transaction", {"name": "t", "duration_ms": 1, "trace_id": "xyz"}, "attributes.trace_id:"),
    ("transaction", {"name": "t", "duration_ms": 1, "start": "noon"}, "attributes.start: Value"),
    ("pageview", {}, "attributes.url: Field required"),
    ("pageview", {"url": "/", "screen": "big"}, "attributes.screen: String should match"),
    ("event", {"properties": {}}, "attributes.name: Field required"),
    ("event", {"name": "e", "properties": []}, "attributes.properties: Input should be a valid"),
    ("web_vital", {"name": "LCP"}, "attributes.value: Field required"),
    ("web_vital", {"name": "FID", "value": 1}, "attributes.name: Input should be 'LCP'"),
    ("web_vital", {"name": "LCP", "value": True}, "attributes.value: Input should be a valid"),
    ("check_in", {"monitor": "m"}, "attributes.status: Field required"),
    ("check_in", {"status": "ok"}, "attributes.monitor: Field required"),
    ("check_in", {"monitor": "m", "status": "ok", "exit_code": 256}, "attributes.exit_code:"),
    ("check_in", {"monitor": "m", "status": "done"}, "attributes.status: Input should be"),
    ("metric", {"name": "cpu"}, "attributes.value: Field required"),
    ("metric", {"name": "cpu", "value": "1"}, "attributes.value: Input should be a valid number"),
    ("metric", {"name": "cpu", "value": 1, "type": "histogram"}, "attributes.type: Input"),
    (
        "metric",
        {"name": "c", "value": 1, "tags": {str(i): "v" for i in range(MAX_TAGS + 1)}},
        "attributes.tags: Dictionary should have at most 50 items",
    ),
]


def reason(exc: ValidationError) -> str:
    """As the gateway words it (ingest_gateway.stamp): the location joined with dots."""
    err = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


@pytest.mark.parametrize(("kind", "attributes", "start"), INVALID)
def test_a_malformed_family_is_refused_naming_the_field(
    kind: str, attributes: dict[str, Any], start: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        EventIn.model_validate({"kind": kind, "attributes": attributes})

    assert reason(caught.value).startswith(start)


@pytest.mark.parametrize(
    ("kind", "attributes", "normalised"),
    [
        ("metric", {"name": "cpu", "value": 2}, {"name": "cpu", "value": 2.0, "type": "gauge"}),
        (
            "error",
            {"message": "m", "level": "warn", "url": None},
            {"message": "m", "level": "warning"},
        ),
        ("error", {"message": "m", "level": "log"}, {"message": "m", "level": "info"}),
        ("error", {"message": "m", "level": "critical"}, {"message": "m", "level": "fatal"}),
        ("pageview", {"url": "/", "title": None, "x": None}, {"url": "/"}),
    ],
)
def test_attributes_are_replaced_by_the_normalised_family(
    kind: str, attributes: dict[str, Any], normalised: dict[str, Any]
) -> None:
    assert EventIn.model_validate({"kind": kind, "attributes": attributes}).attributes == normalised


def test_missing_attributes_are_checked_as_an_empty_object() -> None:
    with pytest.raises(ValidationError, match=r"attributes\.url"):
        EventIn.model_validate({"kind": "pageview"})


def test_a_bad_kind_is_reported_once_and_no_family_is_guessed() -> None:
    with pytest.raises(ValidationError) as caught:
        EventIn.model_validate({"kind": "nope", "attributes": {}})

    assert [e["loc"] for e in caught.value.errors()] == [("kind",)]


def test_every_kind_has_a_versioned_family() -> None:
    assert set(FAMILIES) == set(EventKind)
    assert all(model.VERSION >= 1 for model in FAMILIES.values())
