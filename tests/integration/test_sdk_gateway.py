"""The Python SDK against the real gateway and broker: every call kind lands on its topic.

The gateway runs under uvicorn with the real Kafka producer (the fixture of
``test_sentry_sdk``); what the SDK sent is read back from the ingest topics.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from pulseline.schemas import Event, EventKind
from pulseline.sdk import Client
from pulseline.settings import GatewaySettings
from stream_processors.logic.fingerprint import group
from tests.integration.test_gateway_kafka import consume
from tests.integration.test_sentry_sdk import PROJECT, Recorder
from tests.integration.test_sentry_sdk import gateway as gateway  # the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

KINDS = [EventKind.ERROR, EventKind.EVENT, EventKind.PAGEVIEW, EventKind.METRIC, EventKind.CHECK_IN]


def _explode(n: int) -> None:
    if n == 0:
        raise ZeroDivisionError("the divisor was zero")
    _explode(n - 1)


def _read_distinct(settings: GatewaySettings, distinct: int) -> list[tuple[str, bytes, Event]]:
    """Every record until ``distinct`` event ids are seen. A batch answered 503 may have
    reached Kafka all the same (a slow ack); its retry then adds copies with the same ids."""
    expected = distinct
    while True:
        seen = asyncio.run(consume(settings, KINDS, expected=expected))
        found = len({event.event_id for _, _, event in seen})
        if found >= distinct:
            return seen
        expected = len(seen) + distinct - found


def test_each_sdk_call_lands_on_its_ingest_topic_with_its_fields(
    gateway: tuple[str, GatewaySettings, Recorder],
) -> None:
    dsn, settings, recorder = gateway
    parts = urlsplit(dsn)
    client = Client(
        f"http://{parts.hostname}:{parts.port}",
        key=parts.username,
        release="shop@2.0.0",
        environment="staging",
        flush_interval=0.2,
    )
    try:
        try:
            _explode(2)
        except ZeroDivisionError:
            error_id = client.capture_exception(tags={"area": "billing"})
        message_id = client.capture_message("disk almost full", "warning")
        track_id = client.track("signup", {"plan": "pro", "seats": 3}, distinct_id="user-7")
        page_id = client.pageview(
            "https://shop.test/p/1?utm_source=news", title="Shoes", distinct_id="user-7"
        )
        metric_id = client.metric("queue.depth", 42, unit="jobs", tags={"queue": "emails"})
        check_id = client.check_in("nightly", "ok", duration_ms=1500, exit_code=0)
        with client.monitor("hourly") as good_run:
            pass
        with pytest.raises(RuntimeError), client.monitor("hourly") as bad_run:
            raise RuntimeError("upstream down")
        assert client.flush(30)
        stats = client.stats
    finally:
        client.close(5)

    assert (stats.captured, stats.sent, stats.rejected, stats.failed) == (10, 10, 0, 0)
    assert {status for path, status in recorder.answers if path == "/v1/events"} == {202}
    seen = _read_distinct(settings, 10)

    by_id: dict[str, tuple[str, bytes, Event]] = {
        str(event.event_id): (topic, key, event) for topic, key, event in seen
    }
    assert len(by_id) == 10
    if stats.retries == 0:
        assert len(seen) == 10
    for topic, key, event in seen:  # a copy from a retry is the same event, id included
        original = by_id[str(event.event_id)]
        assert (topic, key, event.attributes) == (original[0], original[1], original[2].attributes)
    sent = {error_id, message_id, track_id, page_id, metric_id, check_id}
    assert sent <= set(by_id)
    prefix = settings.topic_prefix
    for event_id, topic_name, key_text in [
        (error_id, "ingest.error", f"{PROJECT}:{error_id}"),
        (message_id, "ingest.error", f"{PROJECT}:{message_id}"),
        (track_id, "ingest.event", f"{PROJECT}:user-7"),
        (page_id, "ingest.pageview", f"{PROJECT}:user-7"),
        (metric_id, "ingest.metric", f"{PROJECT}:queue.depth"),
        (check_id, "ingest.check_in", f"{PROJECT}:nightly"),
    ]:
        assert event_id is not None
        assert by_id[event_id][:2] == (f"{prefix}{topic_name}", key_text.encode())
    events = [event for _, _, event in by_id.values()]
    assert all(e.project_id == PROJECT for e in events)
    assert all((e.release, e.environment) == ("shop@2.0.0", "staging") for e in events)
    assert all(e.user_agent and e.user_agent.startswith("pulseline-python/") for e in events)

    assert error_id is not None
    error = by_id[error_id][2].attributes
    (exception,) = error["exception"]
    assert (exception["type"], exception["value"]) == ("ZeroDivisionError", "the divisor was zero")
    frames = exception["stacktrace"]["frames"]
    assert [f["function"] for f in frames[-3:]] == ["_explode"] * 3
    assert all(f["in_app"] and f["module"] == __name__ and f["lineno"] > 0 for f in frames)
    assert (error["level"], error["platform"], error["tags"]) == (
        "error",
        "python",
        {"area": "billing"},
    )
    grouping = group(error)
    assert grouping.rule == "stacktrace"
    here = f"{__name__}:test_each_sdk_call_lands_on_its_ingest_topic_with_its_fields"
    assert grouping.components == ("ZeroDivisionError", here, *[f"{__name__}:_explode"] * 3)

    assert message_id is not None
    message = by_id[message_id][2].attributes
    assert (message["message"], message["level"]) == ("disk almost full", "warning")

    assert track_id is not None and page_id is not None and metric_id is not None
    track = by_id[track_id][2]
    assert track.distinct_id == "user-7"
    assert track.attributes == {"name": "signup", "properties": {"plan": "pro", "seats": 3}}
    page = by_id[page_id][2].attributes
    assert page == {
        "url": "https://shop.test/p/1?utm_source=news",
        "path": "/p/1",
        "title": "Shoes",
        "utm_source": "news",
    }
    metric = by_id[metric_id][2].attributes
    assert metric == {
        "name": "queue.depth",
        "value": 42,
        "type": "gauge",
        "unit": "jobs",
        "tags": {"queue": "emails"},
    }

    assert check_id is not None
    check = by_id[check_id][2].attributes
    assert (check["monitor"], check["status"], check["duration_ms"], check["exit_code"]) == (
        "nightly",
        "ok",
        1500,
        0,
    )
    runs: dict[str, list[dict[str, object]]] = {}
    for event in events:
        if event.kind is EventKind.CHECK_IN and event.attributes["monitor"] == "hourly":
            runs.setdefault(str(event.attributes["run_id"]), []).append(event.attributes)
    assert set(runs) == {good_run.run_id, bad_run.run_id}
    assert sorted(str(a["status"]) for a in runs[good_run.run_id]) == ["ok", "start"]
    assert sorted(str(a["status"]) for a in runs[bad_run.run_id]) == ["fail", "start"]
    (failed,) = [a for a in runs[bad_run.run_id] if a["status"] == "fail"]
    assert failed["error_type"] == "RuntimeError"
    assert failed["output"] == "RuntimeError: upstream down"
