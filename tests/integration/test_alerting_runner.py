"""The alert runner as a real process: real broker, a local signed-webhook receiver."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from standardwebhooks.webhooks import Webhook

from pulseline.control.entities import Channel, EntityType, Project
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.records.alerts import DELIVERIES, Delivery
from pulseline.records.incidents import (
    INCIDENT_SIGNALS,
    INCIDENTS,
    Incident,
    IncidentSignal,
    IncidentState,
)
from pulseline.settings import CommonSettings

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"runner-integration-secret").decode()


@dataclass(frozen=True)
class Hit:
    path: str
    webhook_id: str
    verified: bool
    event_type: str
    at: float
    body: bytes = b""


@dataclass
class Receiver:
    """Answers each path with its scripted (status, delay) replies, then 200; records hits."""

    base: str = ""
    script: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]


def _handler(seen: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"] or 0))
            try:
                Webhook(SECRET).verify(body, dict(self.headers.items()))
                verified = True
            except Exception:
                verified = False
            event_type = str(orjson.loads(body).get("type"))
            with seen.lock:
                seen.hits.append(
                    Hit(
                        self.path,
                        self.headers["webhook-id"],
                        verified,
                        event_type,
                        time.time(),
                        body,
                    )
                )
                replies = seen.script.get(self.path, [])
                status, delay = replies.pop(0) if replies else (200, 0.0)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the runner was killed while we held the request

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    seen = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    server.daemon_threads = True
    seen.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


async def provision(settings: CommonSettings, url: str) -> Channel:
    """A project, a signed webhook channel at ``url`` and a rule sending everything to it."""
    store = ControlStore(settings)
    await store.start()
    try:
        service = ControlService(store)
        slug = f"p{uuid.uuid4().hex[:8]}"
        project = await service.create(EntityType.PROJECT, {"name": slug, "slug": slug})
        assert isinstance(project, Project)
        channel = await service.create(
            EntityType.CHANNEL,
            {
                "project_id": project.id,
                "name": "hook",
                "slug": "hook",
                "type": "webhook",
                "config": {"url": url},
                "secret": SECRET,
            },
        )
        assert isinstance(channel, Channel)
        await service.create(
            EntityType.RULE,
            {"project_id": project.id, "name": "all", "slug": "all", "channels": [channel.id]},
        )
        return channel
    finally:
        await store.stop()


def opened(project_id: int, **changes: Any) -> Incident:
    now = datetime.now(UTC)
    key = f"monitor_missed:{uuid.uuid4().hex[:8]}"
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "project_id": project_id,
        "kind": "monitor_missed",
        "severity": "critical",
        "state": "open",
        "dedup_key": key,
        "title": "Nightly backup missed",
        "explanation": "No ping for 15 minutes.",
        "links": {},
        "opened_at": now,
        "updated_at": now,
        "version": 1,
    }
    return Incident.model_validate({**base, **changes})


async def produce(settings: CommonSettings, incidents: list[Incident]) -> list[float]:
    """Send each incident and return the wall time at which each was sent."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await producer.start()
    sent: list[float] = []
    try:
        for incident in incidents:
            sent.append(time.time())
            await producer.send_and_wait(
                INCIDENTS.physical(settings.topic_prefix),
                key=incident.dedup_key.encode(),
                value=orjson.dumps(incident.to_json()),
            )
    finally:
        await producer.stop()
    return sent


async def read_all(settings: CommonSettings, topic: str, min_count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(20):
            while len(seen) < min_count:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    seen += [r.value or b"" for r in records]
    finally:
        await consumer.stop()
    return seen


async def deliveries(settings: CommonSettings, min_count: int) -> list[Delivery]:
    raw = await read_all(settings, DELIVERIES.physical(settings.topic_prefix), min_count)
    return [Delivery.model_validate_json(v) for v in raw]


class RunnerProcess:
    """``python -m alerting`` with this test's environment; logs to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = {
            **os.environ,
            **env,
            "PULSELINE_ALERTING_ALLOW_PRIVATE_NETWORKS": "1",
            "PULSELINE_ALERTING_METRICS_PORT": "0",
            "PULSELINE_ALERTING_TIMEOUT_S": "5",
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "alerting"], env=self.env, stdout=out, stderr=out
            )
        wait_for(lambda: b"alerting: consuming" in self.log.read_bytes()[offset:], 60, self.tail)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


@pytest.fixture
def runner(env: dict[str, str], tmp_path: Path) -> Iterator[RunnerProcess]:
    proc = RunnerProcess(env, tmp_path / "alerting.log")
    try:
        yield proc
    finally:
        proc.kill(signal.SIGTERM)


def wait_for(check: Callable[[], bool], timeout_s: float, why: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s\n{why()}")
        time.sleep(0.05)


def test_each_transition_is_one_signed_webhook(
    env: dict[str, str], receiver: Receiver, runner: RunnerProcess
) -> None:
    settings = CommonSettings.from_env(env)
    channel = asyncio.run(provision(settings, receiver.base + "/once"))
    runner.start()
    first = opened(channel.project_id)
    bump = first.model_copy(update={"version": 2, "occurrences": 3})
    resolved = first.model_copy(update={"version": 3, "state": IncidentState.RESOLVED})
    asyncio.run(produce(settings, [first, bump]))
    wait_for(lambda: len(receiver.at("/once")) >= 1, 20, runner.tail)
    asyncio.run(produce(settings, [resolved]))
    wait_for(lambda: len(receiver.at("/once")) >= 2, 20, runner.tail)
    time.sleep(1.0)  # room for a wrongly repeated notification to show up

    hits = receiver.at("/once")
    assert [h.event_type for h in hits] == ["incident.opened", "incident.resolved"]
    assert all(h.verified for h in hits)
    assert hits[0].webhook_id != hits[1].webhook_id
    log = sorted(asyncio.run(deliveries(settings, 2)), key=lambda d: d.incident_version)
    assert [(d.incident_version, d.status) for d in log] == [(1, "delivered"), (3, "delivered")]
    assert [d.delivery_id for d in log] == [h.webhook_id for h in hits]


def test_a_500_is_delivered_on_retry_with_the_same_webhook_id(
    env: dict[str, str], receiver: Receiver, runner: RunnerProcess
) -> None:
    settings = CommonSettings.from_env(env)
    receiver.script["/flaky"] = [(500, 0.0)]
    channel = asyncio.run(provision(settings, receiver.base + "/flaky"))
    runner.start()
    asyncio.run(produce(settings, [opened(channel.project_id)]))
    wait_for(lambda: len(receiver.at("/flaky")) >= 2, 20, runner.tail)

    hits = receiver.at("/flaky")
    assert hits[0].webhook_id == hits[1].webhook_id
    assert all(h.verified for h in hits)
    log = asyncio.run(deliveries(settings, 2))
    assert [(d.attempt, d.status, d.http_status) for d in log] == [
        (1, "retrying", 500),
        (2, "delivered", 200),
    ]


def test_a_runner_killed_mid_delivery_delivers_again_after_a_restart(
    env: dict[str, str], receiver: Receiver, runner: RunnerProcess
) -> None:
    settings = CommonSettings.from_env(env)
    receiver.script["/slow"] = [(200, 4.0)]
    channel = asyncio.run(provision(settings, receiver.base + "/slow"))
    runner.start()
    asyncio.run(produce(settings, [opened(channel.project_id)]))
    wait_for(lambda: len(receiver.at("/slow")) >= 1, 20, runner.tail)
    runner.kill(signal.SIGKILL)  # while the receiver still holds the request
    runner.start()
    wait_for(lambda: len(receiver.at("/slow")) >= 2, 40, runner.tail)

    hits = receiver.at("/slow")
    assert len({h.webhook_id for h in hits}) == 1
    log = asyncio.run(deliveries(settings, 1))
    assert [d.status for d in log] == ["delivered"]
    assert log[0].delivery_id == hits[0].webhook_id


def test_a_410_disables_the_channel_and_opens_an_incident(
    env: dict[str, str], receiver: Receiver, runner: RunnerProcess
) -> None:
    settings = CommonSettings.from_env(env)
    receiver.script["/gone"] = [(410, 0.0)]
    channel = asyncio.run(provision(settings, receiver.base + "/gone"))
    runner.start()
    asyncio.run(produce(settings, [opened(channel.project_id)]))
    wait_for(lambda: len(receiver.at("/gone")) >= 1, 20, runner.tail)
    signals = asyncio.run(read_all(settings, INCIDENT_SIGNALS.physical(settings.topic_prefix), 1))

    async def control_channel() -> Any:
        store = ControlStore(settings)
        await store.start()
        try:
            return store.view.get(EntityType.CHANNEL, channel.id)
        finally:
            await store.stop()

    assert asyncio.run(control_channel()).disabled is True
    (signal_record,) = [IncidentSignal.model_validate_json(s) for s in signals]
    assert (signal_record.action, signal_record.kind) == ("open", "channel_disabled")
    assert signal_record.project_id == channel.project_id
    assert [d.status for d in asyncio.run(deliveries(settings, 1))] == ["disabled"]


def test_every_incident_gets_a_first_attempt_promptly(
    env: dict[str, str], receiver: Receiver, runner: RunnerProcess
) -> None:
    # The latency target (p95 2 s) is measured by the alert benchmark, not asserted here: a
    # timed assertion on a loaded 2-core CI machine fails for reasons that are not defects.
    # Here: every incident is attempted, none waits longer than a generous liveness bound.
    settings = CommonSettings.from_env(env)
    channel = asyncio.run(provision(settings, receiver.base + "/timed"))
    runner.start()
    incidents = [opened(channel.project_id) for _ in range(20)]
    lags: list[float] = []
    for incident in incidents:
        (sent,) = asyncio.run(produce(settings, [incident]))
        wait_for(lambda: len(receiver.at("/timed")) > len(lags), 20, runner.tail)
        lags.append(receiver.at("/timed")[-1].at - sent)
        time.sleep(0.1)

    p95 = statistics.quantiles(lags, n=20)[-1]
    print(f"incident -> first attempt: p50 {statistics.median(lags):.3f}s p95 {p95:.3f}s")
    assert len(receiver.at("/timed")) == 20
    assert max(lags) <= 10.0, lags


def test_a_burst_is_one_signed_digest_and_a_restart_never_sends_its_members_again(
    env: dict[str, str], receiver: Receiver, runner: RunnerProcess
) -> None:
    settings = CommonSettings.from_env(env)
    channel = asyncio.run(provision(settings, receiver.base + "/burst"))
    runner.env |= {"PULSELINE_ALERTING_DIGEST_WINDOW_S": "2", "PULSELINE_ALERTING_DIGEST_MIN": "3"}
    runner.start()
    burst = [opened(channel.project_id) for _ in range(3)]
    burst += [opened(channel.project_id, severity="warning") for _ in range(2)]
    asyncio.run(produce(settings, burst))
    wait_for(lambda: len(receiver.at("/burst")) >= 1, 20, runner.tail)
    time.sleep(3.0)  # past the window: a burst wrongly sent one by one shows up by now

    (hit,) = receiver.at("/burst")
    assert (hit.event_type, hit.verified) == ("incident.digest", True)
    data = orjson.loads(hit.body)["data"]
    assert data["counts"] == {"incident.opened": 5}
    assert data["severities"] == {"critical": 3, "warning": 2}
    assert sorted(i["id"] for i in data["incidents"]) == sorted(i.id for i in burst)
    log = asyncio.run(deliveries(settings, 5))
    assert sorted(d.incident_id for d in log) == sorted(i.id for i in burst)
    assert {d.status for d in log} == {"delivered"}
    assert all(d.delivery_id.startswith(hit.webhook_id + "_m") for d in log)

    runner.kill(signal.SIGKILL)
    runner.start()
    marker = opened(channel.project_id)
    asyncio.run(produce(settings, [*burst, marker]))  # the same transitions, replayed upstream
    wait_for(lambda: len(receiver.at("/burst")) >= 2, 20, runner.tail)
    time.sleep(3.0)
    hits = receiver.at("/burst")
    assert [h.event_type for h in hits] == ["incident.digest", "incident.opened"]
    assert orjson.loads(hits[1].body)["data"]["id"] == marker.id


def failed_run(project_id: int, occurrences: int = 1, **changes: Any) -> Incident:
    monitor = str(uuid.uuid4())
    return opened(
        project_id,
        kind="monitor_failed",
        severity="error",
        dedup_key=f"{project_id}:monitor_failed:monitor:{monitor}",
        monitor_id=monitor,
        occurrences=occurrences,
        **changes,
    )


def test_flapping_protection_alerts_only_at_the_third_failure_in_a_row(
    env: dict[str, str], receiver: Receiver, runner: RunnerProcess
) -> None:
    settings = CommonSettings.from_env(env)
    channel = asyncio.run(provision(settings, receiver.base + "/flap"))
    runner.env |= {"PULSELINE_ALERTING_FAILURE_THRESHOLD": "3"}
    runner.start()
    failing = failed_run(channel.project_id)
    flapping = failed_run(channel.project_id)

    def next_(incident: Incident, **update: Any) -> Incident:
        return incident.model_copy(update={"version": incident.version + 1, **update})

    second = next_(failing, occurrences=2)
    asyncio.run(
        produce(
            settings, [failing, second, flapping, next_(flapping, state=IncidentState.RESOLVED)]
        )
    )
    time.sleep(2.5)
    assert receiver.at("/flap") == []
    third = next_(second, occurrences=3)
    asyncio.run(produce(settings, [third]))
    wait_for(lambda: len(receiver.at("/flap")) >= 1, 20, runner.tail)
    asyncio.run(produce(settings, [next_(third, state=IncidentState.RESOLVED)]))
    wait_for(lambda: len(receiver.at("/flap")) >= 2, 20, runner.tail)
    time.sleep(1.5)  # room for a wrongly sent notification to show up

    hits = receiver.at("/flap")
    assert [h.event_type for h in hits] == ["incident.opened", "incident.resolved"]
    bodies = [orjson.loads(h.body)["data"] for h in hits]
    assert [(b["id"], b["occurrences"]) for b in bodies] == [(failing.id, 3), (failing.id, 3)]
    log = sorted(asyncio.run(deliveries(settings, 2)), key=lambda d: d.incident_version)
    assert [(d.incident_id, d.state, d.status) for d in log] == [
        (failing.id, "open", "delivered"),
        (failing.id, "resolved", "delivered"),
    ]
