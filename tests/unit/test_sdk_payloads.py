"""The SDK's events as the gateway reads them: shapes, limits, and grouping of exceptions."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from pulseline.schemas import EventIn
from pulseline.sdk import payloads
from pulseline.sdk.payloads import InApp, RawFrame, exception_chain
from stream_processors.logic.fingerprint import group

APP = InApp(library_paths=("/usr/lib/python3.11/",))


def _raise_value_error(text: str) -> None:
    raise ValueError(text)


def _other_place(text: str) -> None:
    raise ValueError(text)


def _caught(func: Any, *args: Any) -> BaseException:
    try:
        func(*args)
    except Exception as exc:
        return exc
    raise AssertionError("nothing was raised")


def _accepted(kind: str, attributes: dict[str, Any]) -> EventIn:
    """What the gateway's validation makes of the event (raises if it would reject it)."""
    return EventIn.model_validate(payloads.envelope(kind, attributes))


def test_an_exception_becomes_the_raised_type_value_and_frames_crashing_frame_last() -> None:
    exc = _caught(_raise_value_error, "bad id 42")

    chain = exception_chain(exc, APP)

    assert len(chain) == 1
    value = chain[0]
    assert value["type"] == "ValueError"
    assert value["value"] == "bad id 42"
    assert "module" not in value  # builtins
    assert value["mechanism"] == {"type": "generic", "handled": True}
    frames = value["stacktrace"]["frames"]
    assert [f["function"] for f in frames] == ["_caught", "_raise_value_error"]
    assert frames[-1]["module"] == __name__
    assert frames[-1]["filename"] == "tests/unit/test_sdk_payloads.py"
    assert frames[-1]["abs_path"] == __file__
    assert frames[-1]["lineno"] == _raise_value_error.__code__.co_firstlineno + 1
    assert all(f["in_app"] for f in frames)


def test_a_custom_exception_names_its_module_and_qualified_type() -> None:
    class Boom(Exception):
        pass

    [value] = exception_chain(Boom("x"), APP)

    assert value["type"] == (
        "test_a_custom_exception_names_its_module_and_qualified_type.<locals>.Boom"
    )
    assert value["module"] == __name__
    assert "stacktrace" not in value  # never raised: no traceback


def test_causes_come_first_and_the_raised_exception_last() -> None:
    try:
        try:
            raise KeyError("user")
        except KeyError as inner:
            raise RuntimeError("lookup failed") from inner
    except RuntimeError as exc:
        explicit = exception_chain(exc, APP, handled=False)
    try:
        try:
            raise KeyError("user")
        except KeyError:
            raise RuntimeError("while handling") from None
    except RuntimeError as exc:
        suppressed = exception_chain(exc, APP)
    try:
        try:
            raise KeyError("user")
        except KeyError:
            raise RuntimeError("during")  # noqa: B904 - the implicit context is the point
    except RuntimeError as exc:
        implicit = exception_chain(exc, APP)

    assert [v["type"] for v in explicit] == ["KeyError", "RuntimeError"]
    assert explicit[0]["mechanism"] == {"type": "chained", "source": "__cause__"}
    assert explicit[1]["mechanism"] == {"type": "generic", "handled": False}
    assert [v["type"] for v in suppressed] == ["RuntimeError"]
    assert [v["type"] for v in implicit] == ["KeyError", "RuntimeError"]
    assert implicit[0]["mechanism"]["source"] == "__context__"


def test_a_cycle_of_contexts_ends() -> None:
    first, second = ValueError("a"), TypeError("b")
    first.__context__, second.__context__ = second, first

    assert [v["type"] for v in exception_chain(first, APP)] == ["TypeError", "ValueError"]


def test_a_deep_stack_keeps_the_250_frames_nearest_the_raise() -> None:
    def dive(n: int) -> None:
        if n == 0:
            raise ValueError("bottom")
        dive(n - 1)

    [value] = exception_chain(_caught(dive, 400), APP)

    frames = value["stacktrace"]["frames"]
    assert len(frames) == payloads.MAX_FRAMES
    assert frames[-1]["lineno"] == dive.__code__.co_firstlineno + 2
    assert all(f["function"].endswith("dive") for f in frames)


@pytest.mark.parametrize(
    ("module", "path", "include", "exclude", "expected"),
    [
        ("app.views", "/srv/app/views.py", (), (), True),
        ("json.decoder", "/usr/lib/python3.11/json/decoder.py", (), (), False),
        ("httpx._client", "/venv/lib/python3.11/site-packages/httpx/_client.py", (), (), False),
        ("requests.api", "/usr/lib/python3/dist-packages/requests/api.py", (), (), False),
        ("myapp.jobs", "/venv/lib/python3.11/site-packages/myapp/jobs.py", ("myapp",), (), True),
        ("myapplication", "/venv/lib/site-packages/myapplication.py", ("myapp",), (), False),
        ("app.vendor.lib", "/srv/app/vendor/lib.py", (), ("app.vendor",), False),
        ("app.vendor", "/srv/app/vendor.py", ("app",), ("app.vendor",), False),
        ("pulseline.sdk.monitor", "/srv/pulseline/sdk/monitor.py", (), ("pulseline.sdk",), False),
        ("importlib._bootstrap", "<frozen importlib._bootstrap>", (), (), False),
        ("__main__", "<string>", (), (), True),
        (None, None, (), (), False),
    ],
)
def test_which_frames_are_in_app(
    module: str | None,
    path: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    expected: bool,
) -> None:
    rule = InApp(include=include, exclude=exclude, library_paths=("/usr/lib/python3.11/",))

    assert rule(module, path) is expected


@pytest.mark.parametrize(
    ("module", "path", "expected"),
    [
        ("app.views", "/srv/code/app/views.py", "app/views.py"),
        ("app", "/srv/code/app/__init__.py", "app/__init__.py"),
        ("script", "/home/me/script.py", "script.py"),
        ("__main__", "/home/me/run.py", "run.py"),
        (None, "C:\\code\\app\\views.py", "views.py"),
        ("x", "<string>", "<string>"),
        (None, None, None),
    ],
)
def test_short_filenames_start_at_the_top_package(
    module: str | None, path: str | None, expected: str | None
) -> None:
    assert payloads.short_filename(module, path) == expected


def test_a_frame_without_a_line_number_leaves_it_out() -> None:
    frame = payloads.frame_payload(RawFrame("app", "/srv/app.py", "main", None), APP)

    assert frame == {
        "in_app": True,
        "filename": "app.py",
        "abs_path": "/srv/app.py",
        "module": "app",
        "function": "main",
    }


def test_errors_from_one_place_group_together_and_from_another_apart() -> None:
    def attributes(exc: BaseException) -> dict[str, Any]:
        return payloads.error_attributes(exception=exception_chain(exc, APP))

    one = group(attributes(_caught(_raise_value_error, "user 1 missing")))
    same = group(attributes(_caught(_raise_value_error, "order 9f8e7d6c-0000 gone")))
    other = group(attributes(_caught(_other_place, "user 1 missing")))

    assert one.rule == "stacktrace"
    assert one.components[0] == "ValueError"
    assert f"{__name__}:_raise_value_error" in one.components
    assert one.hash == same.hash
    assert one.hash != other.hash
    assert one.culprit == "test_sdk_payloads.py in _raise_value_error"


def test_an_error_event_is_one_the_gateway_accepts() -> None:
    exc = _caught(_raise_value_error, "x" * 10_000)
    attributes = payloads.error_attributes(
        exception=exception_chain(exc, APP),
        level="warning",
        tags={"region": "eu", "n": 3},
        fingerprint=["{{ default }}", "db"],
        user={"id": "u1"},
    )

    event = _accepted("error", attributes)

    assert event.attributes["exception"][0]["value"] == "x" * payloads.MAX_MESSAGE
    assert event.attributes["tags"] == {"region": "eu", "n": "3"}
    assert event.attributes["platform"] == "python"
    assert event.attributes["contexts"]["runtime"]["name"]


@pytest.mark.parametrize(
    ("kind", "attributes", "expected"),
    [
        (
            "error",
            payloads.error_attributes(message="disk at 91%", level="warning", logger="ops"),
            {"message": "disk at 91%", "level": "warning", "logger": "ops"},
        ),
        (
            "event",
            payloads.event_attributes("signup", {"plan": "pro", "seats": 3}),
            {"name": "signup", "properties": {"plan": "pro", "seats": 3}},
        ),
        ("event", payloads.event_attributes("ping", None), {"name": "ping", "properties": {}}),
        (
            "pageview",
            payloads.pageview_attributes(
                "https://shop.test/p/1?utm_source=news&utm_campaign=spring&x=1",
                referrer="https://news.test/",
                title="Shoes",
            ),
            {
                "url": "https://shop.test/p/1?utm_source=news&utm_campaign=spring&x=1",
                "path": "/p/1",
                "referrer": "https://news.test/",
                "title": "Shoes",
                "utm_source": "news",
                "utm_campaign": "spring",
            },
        ),
        (
            "pageview",
            payloads.pageview_attributes("/docs", path="/docs/"),
            {"url": "/docs", "path": "/docs/"},
        ),
        (
            "metric",
            payloads.metric_attributes("queue.depth", 42, unit="jobs", tags={"q": "mail"}),
            {"name": "queue.depth", "value": 42, "type": "gauge", "unit": "jobs"},
        ),
        (
            "metric",
            payloads.metric_attributes("requests", 1.5, type="counter"),
            {"name": "requests", "value": 1.5, "type": "counter"},
        ),
        (
            "check_in",
            payloads.check_in_attributes(
                "nightly", "fail", run_id="r1", duration_ms=-3, exit_code=2, output="disk full"
            ),
            {
                "monitor": "nightly",
                "status": "fail",
                "run_id": "r1",
                "duration_ms": 0.0,
                "exit_code": 2,
                "output": "disk full",
                "source": "sdk",
            },
        ),
        (
            "check_in",
            payloads.check_in_attributes("nightly", "start", run_id="r1"),
            {"monitor": "nightly", "status": "start", "run_id": "r1", "source": "sdk"},
        ),
    ],
)
def test_each_kind_is_built_as_the_gateway_reads_it(
    kind: str, attributes: dict[str, Any], expected: dict[str, Any]
) -> None:
    event = _accepted(kind, attributes)

    assert {k: event.attributes[k] for k in expected} == expected
    assert event.event_id is not None


@pytest.mark.parametrize(
    "build",
    [
        lambda: payloads.metric_attributes("m", math.nan),
        lambda: payloads.metric_attributes("m", math.inf),
        lambda: payloads.metric_attributes("m", True),
        lambda: payloads.metric_attributes("m", "3"),  # type: ignore[arg-type]
        lambda: payloads.metric_attributes("m", 1, type="histogram"),
        lambda: payloads.metric_attributes("", 1),
        lambda: payloads.check_in_attributes("job", "done"),
        lambda: payloads.check_in_attributes("", "ok"),
        lambda: payloads.error_attributes(message="x", level="loud"),
        lambda: payloads.error_attributes(message=""),
        lambda: payloads.event_attributes("", {}),
        lambda: payloads.pageview_attributes(""),
    ],
)
def test_what_the_gateway_would_refuse_is_refused_at_once(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_long_names_and_tags_are_cut_to_the_limits() -> None:
    attributes = payloads.metric_attributes(
        "n" * 500, 1, tags={f"k{i}": "v" * 300 for i in range(80)}
    )

    event = _accepted("metric", attributes)

    assert len(event.attributes["name"]) == payloads.MAX_SHORT
    assert len(event.attributes["tags"]) == payloads.MAX_TAGS
    assert {len(v) for v in event.attributes["tags"].values()} == {payloads.MAX_SHORT}


def test_the_envelope_keeps_a_given_id_and_time_and_leaves_out_what_is_unset() -> None:
    event_id = str(uuid.uuid4())
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    event = payloads.envelope(
        "event", {"name": "e"}, now=now, event_id=event_id, release="1.2", distinct_id="u1"
    )

    assert event == {
        "kind": "event",
        "event_id": event_id,
        "timestamp": "2026-01-02T03:04:05+00:00",
        "attributes": {"name": "e"},
        "distinct_id": "u1",
        "release": "1.2",
    }
    assert payloads.envelope("event", {})["event_id"] != payloads.envelope("event", {})["event_id"]
