"""The official, unmodified ``sentry-sdk`` reports into the gateway's Sentry endpoints.

The gateway runs under uvicorn on a free loopback port with the real Kafka producer;
what the SDK sent is read back from the ingest topics of the real broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, Literal, cast

import pytest
import sentry_sdk
from aiokafka import AIOKafkaConsumer
from sentry_sdk.crons import capture_checkin
from sentry_sdk.crons.consts import MonitorStatus
from starlette.types import Message, Receive, Scope, Send

from ingest_gateway.app import create_app
from ingest_gateway.producer import KafkaProducer
from pulseline.keys import ApiKey, StaticKeyRing, new_key
from pulseline.keys import Scope as KeyScope
from pulseline.schemas import Event, EventKind
from pulseline.settings import GatewaySettings
from pulseline.topics import ingest_topic
from tests.helpers import serving

pytestmark = pytest.mark.integration

PROJECT = 42


class Recorder:
    """ASGI wrapper noting (path, status) of every answered request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.answers: list[tuple[str, int]] = []
        self.encodings: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            self.encodings.add(headers.get(b"content-encoding", b"identity").decode())

        async def note(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.answers.append((scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, note)


@pytest.fixture
def gateway(env: dict[str, str]) -> Iterator[tuple[str, GatewaySettings, Recorder]]:
    key = new_key(KeyScope.INGEST)
    keyring = StaticKeyRing()
    keyring.add(key, ApiKey(PROJECT, KeyScope.INGEST))
    settings = GatewaySettings.from_env(env)
    recorder = Recorder(create_app(settings, keyring, KafkaProducer(settings)))
    with serving(recorder, start_timeout_s=10) as port:
        yield f"http://{key}@127.0.0.1:{port}/{PROJECT}", settings, recorder


async def _consume(settings: GatewaySettings, expected: int) -> list[Event]:
    kinds = (EventKind.ERROR, EventKind.TRANSACTION, EventKind.CHECK_IN)
    consumer = AIOKafkaConsumer(
        *(ingest_topic(kind).physical(settings.topic_prefix) for kind in kinds),
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen: list[Event] = []
        async with asyncio.timeout(60):
            while len(seen) < expected:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen += [Event.model_validate_json(r.value) for r in records]
        return seen
    finally:
        await consumer.stop()


def _nightly_job() -> None:
    with sentry_sdk.start_span(op="db.query", name="SELECT 1"):
        time.sleep(0.02)


def _explode(n: int) -> None:
    if n == 0:
        raise ZeroDivisionError("the divisor was zero")
    _explode(n - 1)


@pytest.mark.parametrize("compression", ["br", "gzip"])
def test_the_official_sdk_reports_errors_messages_transactions_and_check_ins(
    gateway: tuple[str, GatewaySettings, Recorder], compression: Literal["br", "gzip"]
) -> None:
    dsn, settings, recorder = gateway
    sentry_sdk.init(
        dsn=dsn,
        traces_sample_rate=1.0,
        release="shop@1.2.3",
        environment="staging",
        default_integrations=False,
        # The SDK compares this option to the strings "br" and "gzip" (its type hint
        # names an enum it does not accept at run time).
        _experiments=cast(Any, {"transport_compression_algo": compression}),
    )
    try:
        sentry_sdk.set_user({"id": "user-7"})
        try:
            _explode(3)
        except ZeroDivisionError as exc:
            error_id = sentry_sdk.capture_exception(exc)
        message_id = sentry_sdk.capture_message("disk almost full", level="warning")
        with sentry_sdk.start_transaction(op="task", name="nightly-job") as transaction:
            _nightly_job()
            transaction.set_status("ok")
        capture_checkin(monitor_slug="nightly", status=MonitorStatus.IN_PROGRESS)
        capture_checkin(monitor_slug="nightly", status=MonitorStatus.OK, duration=1.5)
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close(timeout=2)

    events = asyncio.run(_consume(settings, 5))
    by_kind: dict[str, list[Event]] = {}
    for event in events:
        assert event.project_id == PROJECT
        by_kind.setdefault(event.kind.value, []).append(event)
    assert sorted((k, len(v)) for k, v in by_kind.items()) == [
        ("check_in", 2),
        ("error", 2),
        ("transaction", 1),
    ]

    errors = {e.event_id.hex: e for e in by_kind["error"]}
    assert error_id is not None and message_id is not None
    assert set(errors) == {error_id, message_id}
    error = errors[error_id]
    assert (error.release, error.environment, error.distinct_id) == (
        "shop@1.2.3",
        "staging",
        "user-7",
    )
    (exception,) = error.attributes["exception"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["value"] == "the divisor was zero"
    functions = [f["function"] for f in exception["stacktrace"]["frames"]]
    assert functions[-4:] == ["_explode"] * 4  # the crashing frame last, as Sentry sends
    assert all(f["lineno"] > 0 and f["filename"] for f in exception["stacktrace"]["frames"])
    assert error.attributes["level"] == "error"
    message = errors[message_id]
    assert message.attributes["message"] == "disk almost full"
    assert message.attributes["level"] == "warning"

    (produced,) = by_kind["transaction"]
    attrs = produced.attributes
    assert attrs["name"] == "nightly-job"
    assert attrs["op"] == "task"
    assert attrs["status"] == "ok"
    assert attrs["spans_count"] == 1
    assert 15 <= attrs["duration_ms"] < 5000
    assert len(attrs["trace_id"]) == 32 and len(attrs["span_id"]) == 16

    start, done = sorted(by_kind["check_in"], key=lambda e: e.attributes["status"] != "start")
    assert start.attributes["monitor"] == done.attributes["monitor"] == "nightly"
    assert (start.attributes["status"], done.attributes["status"]) == ("start", "ok")
    assert done.attributes["duration_ms"] == 1500
    assert done.environment == "staging" and done.release == "shop@1.2.3"

    sentry_answers = [(p, s) for p, s in recorder.answers if p.startswith("/api/")]
    assert len(sentry_answers) >= 5  # each capture is its own envelope
    assert all(path == f"/api/{PROJECT}/envelope/" for path, _ in sentry_answers)
    assert {status for _, status in sentry_answers} == {200}
    assert recorder.encodings == {compression}
