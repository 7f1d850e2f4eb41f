"""The Python SDK through a gateway restart: killed mid-stream, started again, nothing lost.

The gateway runs as its own process (``python -m ingest_gateway``, the real producer and
control plane) on a fixed port. An SDK client sends a steady stream; mid-stream the
gateway gets SIGKILL, so a request in flight is cut, perhaps after Kafka took its
events. The stream goes on while nothing listens, then a new gateway process starts on
the same port and the client flushes.

No loss: the ids the capture calls returned are exactly the ids on the ingest topics.
No duplicate where users look: Kafka may hold a retried batch twice (at least once), so
the real sink stores the topics into embedded ClickHouse while they fill (background
merges stopped, so only the read can fold copies) and every id must be one row under
``FINAL``, the way the read API reads the table.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

import pulseline.sdk.client as sdk_client
from pulseline.control.entities import EntityType, Project
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.keys import Scope
from pulseline.ports import free_port
from pulseline.schemas import Event
from pulseline.sdk import Client
from pulseline.sdk.options import Target
from pulseline.sdk.transport import HttpTransport, Reply
from pulseline.settings import CommonSettings, StorageSettings
from pulseline.topics import INGEST
from storage.client import Engine
from storage.queries import EventQuery
from tests.helpers import eventually
from tests.live_sink import LiveSink, live_storage

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(240)]

RATE = 300  # events per second from the application thread
BEFORE_KILL_S = 3.0  # the stream runs this long against the first gateway
DOWN_S = 3.0  # nothing listens on the port for at least this long (then a process boots)
AFTER_READY_S = 2.0  # the stream goes on this long against the second gateway
MIN_STREAM_S = 10.0
STREAM_LIMIT_S = 40.0  # liveness only: a gateway that never comes back ends the stream


@dataclass(frozen=True)
class Attempt:
    """One POST the SDK made: when (monotonic), how it ended, which events it carried."""

    started: float
    ended: float
    status: int | None
    error: str | None
    ids: tuple[str, ...]


@dataclass
class Attempts:
    """What the SDK's transport did; ``in_flight`` is set while a request is out."""

    log: list[Attempt] = field(default_factory=list)
    in_flight: threading.Event = field(default_factory=threading.Event)

    def transport(self) -> Callable[[Target, float, int | None], HttpTransport]:
        attempts = self

        class Recording(HttpTransport):
            def post(self, body: bytes) -> Reply:
                ids = tuple(str(event["event_id"]) for event in json.loads(body))
                started = time.monotonic()
                attempts.in_flight.set()
                try:
                    reply = super().post(body)
                finally:
                    attempts.in_flight.clear()
                attempts.log.append(
                    Attempt(started, time.monotonic(), reply.status, reply.error, ids)
                )
                return reply

        return Recording


class GatewayProcess:
    """``python -m ingest_gateway`` on a fixed port, logging to a file."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = {
            **os.environ,
            **env,
            "PULSELINE_GATEWAY_HOST": "127.0.0.1",
            "PULSELINE_GATEWAY_PORT": str(port),
            "PULSELINE_GATEWAY_WORKERS": "1",  # one process: SIGKILL takes all of it
            "PULSELINE_LOG_LEVEL": "WARNING",
        }
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ingest_gateway"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout_s: float = 30) -> None:
        """Until ``/readyz`` says the keys are loaded and Kafka answers."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, f"the gateway exited:\n{self.log_tail()}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the gateway was not ready:\n{self.log_tail()}"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


@dataclass
class Restart:
    """Kills the gateway mid-stream and starts it again, on a thread of its own."""

    gateway: GatewayProcess
    attempts: Attempts
    t0: float
    killed_at: float | None = None  # just before the signal went
    started_at: float | None = None
    ready_at: float | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            time.sleep(max(0.0, self.t0 + BEFORE_KILL_S - time.monotonic()))
            # Kill while a request is out, late in it (most of a typical answered
            # request's time): the cut that can leave a batch on Kafka without its answer.
            answered = [a.ended - a.started for a in self.attempts.log if a.status == 202]
            into = 0.8 * statistics.median(answered[-20:]) if answered else 0.0
            give_up = time.monotonic() + 5  # then kill whatever is going on
            while time.monotonic() < give_up:
                if self.attempts.in_flight.wait(give_up - time.monotonic()):
                    time.sleep(into)
                    if self.attempts.in_flight.is_set():
                        break
            self.killed_at = time.monotonic()
            self.gateway.kill()
            time.sleep(DOWN_S)
            self.started_at = time.monotonic()
            self.gateway.start()
            self.gateway.wait_ready()
            self.ready_at = time.monotonic()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


async def provision(settings: CommonSettings) -> tuple[int, str]:
    """A project without a practical rate limit (a 429 is not what this test is about)
    and its ingest key, on the control topic the gateway reads at boot."""
    store = ControlStore(settings)
    await store.start()
    try:
        service = ControlService(store)
        project = await service.create(
            EntityType.PROJECT,
            {"name": "restart", "slug": "restart", "tier": "pro", "events_per_second": 100_000},
        )
        assert isinstance(project, Project)
        _, key = await service.create_key(project.id, Scope.INGEST, "sdk")
        return project.id, key
    finally:
        await store.stop()


async def read_ingest(settings: CommonSettings) -> tuple[list[Event], dict[TopicPartition, int]]:
    """Every record of every ingest topic, from the start to the end offsets as of now."""
    topics = [spec.physical(settings.topic_prefix) for spec in INGEST.values()]
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:

        async def assigned() -> bool:  # without a group, every partition is assigned
            return {tp.topic for tp in consumer.assignment()} == set(topics)

        assert await eventually(assigned, timeout_s=10, every_s=0.05)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        events: list[Event] = []
        async with asyncio.timeout(30):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    events += [Event.model_validate_json(r.value) for r in records]
        return events, ends
    finally:
        await consumer.stop()


async def stored(
    engine: Engine, project: int, since: datetime, limit: int
) -> tuple[int, Counter[str], list[str]]:
    """Rows in the table (merged or not), rows per id under FINAL, the read API's page."""
    db, params = engine.database, {"project": project}
    where = "WHERE project_id = {project:UInt32}"
    raw = await engine.rows(f"SELECT count() AS n FROM {db}.events {where}", params)
    final = await engine.rows(
        f"SELECT toString(event_id) AS id, count() AS n FROM {db}.events FINAL {where} GROUP BY id",
        params,
    )
    sql, query_params = EventQuery(
        project, since, datetime.now(UTC) + timedelta(hours=1), limit
    ).sql(db)
    page = [str(row["event_id"]) for row in await engine.rows(sql, query_params)]
    return (
        int(raw[0]["n"]),
        Counter({str(row["id"]): int(row["n"]) for row in final}),
        page,
    )


def send(client: Client, i: int) -> str | None:
    """The application's calls, three kinds on three ingest topics."""
    if i % 3 == 0:
        return client.track("checkout", {"step": i % 7, "n": i}, distinct_id=f"user-{i % 50}")
    if i % 3 == 1:
        return client.capture_message(f"job {i} retried", "warning", tags={"n": str(i)})
    return client.metric("queue.depth", float(i), unit="jobs", tags={"queue": f"q{i % 4}"})


@pytest.fixture
def gateway_process(env: dict[str, str], tmp_path: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(env, free_port(), tmp_path / "gateway.log")
    try:
        yield gateway
    finally:
        gateway.stop()


def test_a_gateway_killed_mid_stream_and_restarted_loses_and_duplicates_nothing(
    storage_env: dict[str, str],
    gateway_process: GatewayProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    began = time.monotonic()
    since = datetime.now(UTC) - timedelta(minutes=5)
    settings = StorageSettings.from_env(storage_env)
    with live_storage(settings) as (engine, live):
        run_and_check(settings, engine, live, gateway_process, monkeypatch, began, since)


def run_and_check(
    settings: StorageSettings,
    engine: Engine,
    live: LiveSink,
    gateway_process: GatewayProcess,
    monkeypatch: pytest.MonkeyPatch,
    began: float,
    since: datetime,
) -> None:
    project, key = asyncio.run(provision(settings))
    gateway_process.start()
    gateway_process.wait_ready()

    attempts = Attempts()
    monkeypatch.setattr(sdk_client, "HttpTransport", attempts.transport())
    client = Client(
        gateway_process.url,
        key=key,
        release="shop@3.1.0",
        flush_interval=0.2,
        max_queue_events=50_000,  # room for the whole outage: nothing may be dropped
        max_retries=1_000,  # liveness is bounded by STREAM_LIMIT_S and flush, not by this
        backoff_base=0.1,
        backoff_cap=0.5,
    )
    t0 = time.monotonic()
    restart = Restart(gateway_process, attempts, t0)
    controller = threading.Thread(target=restart.run, name="restart", daemon=True)
    controller.start()

    ids: list[str | None] = []
    queued_at_restart = 0
    index_at_kill: int | None = None  # how many events were captured when it happened
    index_at_ready: int | None = None
    try:
        while True:
            now = time.monotonic()
            if restart.ready_at is not None and now >= max(
                t0 + MIN_STREAM_S, restart.ready_at + AFTER_READY_S
            ):
                break
            if restart.error is not None or now > t0 + STREAM_LIMIT_S:
                break
            if restart.killed_at is not None and index_at_kill is None:
                index_at_kill = len(ids)
            if restart.started_at is not None and not queued_at_restart:
                queued_at_restart = client.stats.queued
            if restart.ready_at is not None and index_at_ready is None:
                index_at_ready = len(ids)
            while len(ids) < int((now - t0) * RATE):
                ids.append(send(client, len(ids)))
            time.sleep(0.01)
        controller.join(30)
        if restart.error is not None:
            raise restart.error
        assert restart.done.is_set() and restart.ready_at is not None, "no restart"
        flushed = client.flush(30)
        stats = client.stats
    finally:
        client.close(5)
    streamed_s = time.monotonic() - t0

    sent = [event_id for event_id in ids if event_id is not None]
    assert len(sent) == len(ids), "a capture call returned no event id"
    assert len(set(sent)) == len(sent)
    assert flushed
    assert (stats.captured, stats.sent, stats.queued) == (len(sent), len(sent), 0)
    assert (stats.dropped, stats.rejected, stats.failed) == (0, 0, 0)

    # The outage was real: requests got no answer between the kill and the new process.
    assert restart.killed_at is not None and restart.started_at is not None
    unanswered = [a for a in attempts.log if a.status is None]
    during = [a for a in unanswered if restart.killed_at <= a.ended <= restart.ready_at]
    out = [a for a in attempts.log if a.started <= restart.killed_at <= a.ended]
    assert during, "no request failed while the gateway was down"
    assert stats.retries >= len(during)
    assert queued_at_restart > client.options.batch_size  # the stream went on into the queue
    assert index_at_kill is not None and index_at_ready is not None
    captured_while_down = index_at_ready - index_at_kill
    assert captured_while_down > 0
    assert len(sent) > index_at_ready  # and went on after the restart

    # No loss: the ids the calls returned are the ids on the ingest topics.
    records, ends = asyncio.run(read_ingest(settings))
    copies = Counter(str(event.event_id) for event in records)
    assert set(copies) == set(sent)
    assert {event.project_id for event in records} == {project}
    # A second copy on Kafka comes only from a batch that was tried again.
    retried = {i for a in attempts.log if a.status != 202 for i in a.ids}
    duplicated = {event_id for event_id, n in copies.items() if n > 1}
    assert duplicated <= retried

    # None duplicated where users look: the sink stored the topics as they filled; each
    # id is one row the way the read API reads the table (FINAL).
    live.ends = ends
    assert live.caught_up.wait(30), "the sink did not catch up"
    assert live.error is None, live.error
    live.stop.set()
    live.thread.join(30)
    raw_rows, final_rows, page = asyncio.run(stored(engine, project, since, len(sent) + 100))
    assert set(final_rows) == set(sent)
    assert [event_id for event_id, n in final_rows.items() if n != 1] == []
    assert sorted(page) == sorted(sent)

    print(
        f"\nsdk restart: {len(sent)} events captured over {streamed_s:.1f} s "
        f"({captured_while_down} while the gateway was down "
        f"{restart.ready_at - restart.killed_at:.1f} s, of which "
        f"{restart.ready_at - restart.started_at:.1f} s booting); "
        f"requests out at the kill: {len(out)} (got {[a.status for a in out]}); "
        f"requests: {len(attempts.log)}, unanswered {len(unanswered)} "
        f"({len(during)} during the outage), SDK retries {stats.retries}, "
        f"queued at restart {queued_at_restart}; "
        f"Kafka records {len(records)} for {len(copies)} ids "
        f"({len(records) - len(copies)} extra copies of {len(duplicated)} ids); "
        f"stored rows: {raw_rows} without FINAL (merges stopped), "
        f"{sum(final_rows.values())} under FINAL, "
        f"read API page {len(page)}; total {time.monotonic() - began:.1f} s"
    )
