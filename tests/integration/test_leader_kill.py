"""Partition leader killed (SIGKILL) three times under load: no acked event lost, none
visibly duplicated.

Three local brokers (``deploy.local.cluster``: RF 3, ``min.insync.replicas=2``, unclean
leader election off) carry the project's topics. The real gateway runs as its own process
(``python -m ingest_gateway``, acks=all, idempotent producer); a few HTTP clients post
batches with their own event ids and timestamps for the whole run and log every request's
outcome per id: ok (2xx), failed (4xx/5xx) or indeterminate (timeout, connection error).
Like a real SDK they send a batch again, the same ids and bytes, after a 503 (honouring
``Retry-After``, capped) or no answer.

While the load runs, three times: the leader of one ingest partition (from metadata) gets
SIGKILL; once another replica leads, it is started again and the test waits until every
partition of the run's topics has its full ISR back before the next kill.

The real sink stores the topics into embedded ClickHouse while they fill (background merges
stopped, so only the read folds copies). ``pulseline.accounting`` then accounts for every
id against what is visible (``FINAL``, the way the read API reads): lost (acked but not
stored) 0, duplicates 0, phantoms 0; every acked id is also on the ingest topics. The
figures (503s, the longest window of them, per kill the leader and the time to the first
success) are printed on a ``LEADERKILL`` line (run with ``-s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local.broker import alive, wait_ready
from deploy.local.cluster import ClusterNode, LocalCluster
from pulseline.accounting import account, fold_counts, stored_counts_sql
from pulseline.ports import free_port
from pulseline.schemas import EventKind
from pulseline.settings import StorageSettings
from pulseline.topic_admin import create_topics
from pulseline.topics import INGEST
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.queries import EventQuery
from storage.sink import Sink
from tests.integration.test_sdk_restart import GatewayProcess, provision, read_ingest

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(420)]

PARTITIONS = 3
KILLS = 3
CLIENTS = 3
BATCH_EVENTS = 20
PAUSE_S = 0.25  # between a client's batches: about 200 events/s in all
REQUEST_TIMEOUT_S = 15.0  # the gateway answers 503 after produce_timeout_s (5 s)
RETRY_AFTER_CAP_S = 0.5  # the gateway says 5 s; a client may come back sooner
WARMUP_S = 4.0  # load before the first kill
DOWN_S = 3.0  # the killed broker stays down at least this long (and until a new leader)
TAIL_S = 3.0  # load after the last recovery
DRAIN_S = 30.0  # after the load stops, a client may still retry its last batch this long
LEADER_MOVE_TIMEOUT_S = 45.0
RESTART_TIMEOUT_S = 90.0
ISR_TIMEOUT_S = 90.0
RECOVERY_TIMEOUT_S = 60.0  # the gateway acks again after a restart
CATCH_UP_S = 90.0
ENVIRONMENT = "leaderkill"
CHOSEN_KIND = EventKind.EVENT
CHOSEN_PARTITION = 0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(
        tmp_path_factory.mktemp("cluster"), dist_dir=REPO / ".pulseline" / "kafka" / "dist"
    )
    try:
        local.start(tie_to_parent=True)  # no orphan broker if pytest dies
        yield local
    finally:
        local.stop()


# --- load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One POST: when (monotonic), how it ended, which ids it carried and which came back."""

    client: int
    started: float
    ended: float
    status: int | None  # None: no answer (indeterminate)
    error: str | None
    ids: tuple[str, ...]
    acked: tuple[str, ...] = ()  # the ids a 2xx answer names as accepted

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Load:
    url: str
    key: str
    stop: threading.Event = field(default_factory=threading.Event)
    log: list[Outcome] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped_at: float | None = None
    errors: list[BaseException] = field(default_factory=list)

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.log.append(outcome)

    def ok_after(self, at: float) -> Outcome | None:
        """The first 2xx answer to a request sent at or after ``at``."""
        with self.lock:
            found = [o for o in self.log if o.ok and o.started >= at]
        return min(found, key=lambda o: o.ended, default=None)

    def client(self, n: int) -> None:
        try:
            headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
            with httpx.Client(
                base_url=self.url, timeout=REQUEST_TIMEOUT_S, headers=headers
            ) as http:
                batch_no = 0
                while not self.stop.is_set():
                    self.deliver(http, n, batch(n, batch_no))
                    batch_no += 1
                    self.stop.wait(PAUSE_S)
        except BaseException as exc:
            self.errors.append(exc)

    def deliver(self, http: httpx.Client, n: int, events: list[dict[str, Any]]) -> None:
        """POST until a 2xx, a permanent 4xx, or the drain deadline after the load stopped."""
        ids = tuple(str(e["event_id"]) for e in events)
        body = orjson.dumps(events)
        with self.lock:
            self.sent.update(ids)
        while True:
            started = time.monotonic()
            try:
                response = http.post("/v1/events", content=body)
            except httpx.HTTPError as exc:  # no answer: the events may or may not be stored
                self.record(Outcome(n, started, time.monotonic(), None, repr(exc), ids))
                wait = 0.3
            else:
                ended = time.monotonic()
                acked: tuple[str, ...] = ()
                if 200 <= response.status_code < 300:
                    acked = tuple(str(i) for i in response.json()["event_ids"])
                error = None if acked else response.text[:300]
                self.record(Outcome(n, started, ended, response.status_code, error, ids, acked))
                if acked:
                    return
                if response.status_code not in (429, 503):
                    return  # permanent: the same request fails again
                retry_after = float(response.headers.get("retry-after", "1"))
                wait = min(retry_after, RETRY_AFTER_CAP_S)
            if self.stopped_at is not None and time.monotonic() > self.stopped_at + DRAIN_S:
                return  # given up: its ids stay indeterminate
            time.sleep(wait)


def batch(client: int, batch_no: int) -> list[dict[str, Any]]:
    """Client-made ids and timestamps: a batch sent again is the same rows, byte for byte."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    return [
        {
            "kind": CHOSEN_KIND.value,
            "event_id": str(uuid.uuid4()),
            "timestamp": at,
            "distinct_id": f"c{client}-u{(batch_no * BATCH_EVENTS + i) % 60}",
            "environment": ENVIRONMENT,
            "attributes": {"name": "leaderkill", "properties": {"batch": batch_no, "n": i}},
        }
        for i in range(BATCH_EVENTS)
    ]


def acked_since(load: Load, at: float) -> bool:
    return load.ok_after(at) is not None


def windows_503(log: list[Outcome], end: float) -> list[tuple[float, float]]:
    """Spans from a 503 answer (no span open) to the next 2xx answer of any client."""
    windows: list[tuple[float, float]] = []
    opened: float | None = None
    for o in sorted(log, key=lambda o: o.ended):
        if o.status == 503 and opened is None:
            opened = o.ended
        elif o.ok and opened is not None:
            windows.append((opened, o.ended))
            opened = None
    if opened is not None:
        windows.append((opened, end))
    return windows


# --- cluster ------------------------------------------------------------------------------


async def metadata(bootstrap: str, topics: list[str] | None) -> list[dict[str, Any]]:
    """Topic metadata from any live broker; [] when none answered in time."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        async with asyncio.timeout(6):
            await admin.start()
            described: list[dict[str, Any]] = await admin.describe_topics(topics)
            return described
    except Exception:
        return []
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    for t in await metadata(bootstrap, [topic]):
        for p in t["partitions"]:
            if p["partition"] == partition and p["error_code"] in (0, 9):  # 9: replica down
                return int(p["leader"])
    return -1


async def full_isr(bootstrap: str, prefix: str) -> bool:
    """Every partition of the run's topics (and the offsets topic) leads with all 3 in ISR."""
    described = await metadata(bootstrap, None)
    mine = [
        t for t in described if t["topic"].startswith(prefix) or t["topic"] == "__consumer_offsets"
    ]
    parts = [p for t in mine for p in t["partitions"]]
    return bool(parts) and all(p["leader"] >= 0 and len(p["isr"]) == 3 for p in parts)


def wait_for(check: Any, timeout_s: float, every_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every_s)
    return bool(check())


@dataclass
class Kill:
    broker: int
    killed_at: float
    new_leader: int = -1
    leader_moved_at: float | None = None
    spawned_at: float | None = None
    restarted_at: float | None = None  # answering metadata again
    isr_at: float | None = None


def kill_leader(cluster: LocalCluster, topic: str, prefix: str) -> Kill:
    """SIGKILL the partition's leader, start it again, see a new leader, wait for the ISR.

    Runs on the main thread: a node spawned with ``tie_to_parent`` is signalled when the
    thread that started it ends."""
    bootstrap = cluster.bootstrap
    leader = asyncio.run(leader_of(bootstrap, topic, CHOSEN_PARTITION))
    assert leader > 0, f"no leader for {topic}/{CHOSEN_PARTITION}"
    node: ClusterNode = next(n for n in cluster.nodes() if n.node_id == leader)
    pid = node.pid()
    assert pid is not None, f"broker {leader} leads {topic} but is not running"
    kill = Kill(leader, time.monotonic())
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not alive(pid), 10, 0.05), (
        f"broker {leader} (pid {pid}) survived SIGKILL"
    )

    def moved() -> bool:
        kill.new_leader = asyncio.run(leader_of(bootstrap, topic, CHOSEN_PARTITION))
        return kill.new_leader not in (-1, leader)

    # The JVM boots for longer than the controller takes to fence the dead broker (its
    # session timeout), so it is started at once and the election is observed meanwhile.
    time.sleep(max(0.0, kill.killed_at + DOWN_S - time.monotonic()))
    kill.spawned_at = time.monotonic()
    node.spawn(tie_to_parent=True)
    assert wait_for(moved, LEADER_MOVE_TIMEOUT_S), f"no new leader after killing {leader}"
    kill.leader_moved_at = time.monotonic()
    wait_ready(node.settings.bootstrap, RESTART_TIMEOUT_S, node.log_file)
    kill.restarted_at = time.monotonic()
    assert wait_for(lambda: asyncio.run(full_isr(bootstrap, prefix)), ISR_TIMEOUT_S), (
        f"broker {leader} was not back in every ISR {ISR_TIMEOUT_S:g}s after its restart"
    )
    kill.isr_at = time.monotonic()
    return kill


# --- sink ---------------------------------------------------------------------------------


class SupervisedSink:
    """The real sink on a thread of its own, storing while the load runs; started again if
    it dies (as ``pulseline run`` or Kubernetes would), each death kept in ``failures``."""

    def __init__(self, settings: StorageSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.ends: dict[TopicPartition, int] | None = None  # set once the load is over
        self.caught_up = threading.Event()
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, name="sink", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        while not self.stop.is_set():
            sink = Sink(self.settings, self.engine, StorageMetrics())
            task: asyncio.Task[None] | None = None
            try:
                await sink.start()
                task = asyncio.create_task(sink.run())
                while not self.stop.is_set() and not task.done():
                    await self._check_caught_up(sink)
                    await asyncio.sleep(0.2)
                await sink.stop()
                await task
            except Exception as exc:
                self.failures.append(f"{time.monotonic():.1f} {exc!r}")
                if task is not None and not task.done():
                    await sink.stop()
                    with contextlib.suppress(Exception):
                        await task
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await sink.close()

    async def _check_caught_up(self, sink: Sink) -> None:
        ends = self.ends
        if ends is None or self.caught_up.is_set():
            return
        # The sink commits a partition's offsets only after ClickHouse has its rows.
        with contextlib.suppress(Exception):
            committed = [await sink.consumer.committed(tp) or 0 for tp in ends]
            if all(c >= end for c, end in zip(committed, ends.values(), strict=True)):
                self.caught_up.set()


VISIBLE_SQL = (
    "SELECT project_id, toString(event_id) AS event_id, count() AS copies "
    "FROM {db}.events FINAL WHERE project_id IN {{projects:Array(UInt32)}} "
    "AND environment = {{environment:String}} GROUP BY project_id, event_id"
)


def query(engine: Engine, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    result = engine.call(engine.client.query, sql, parameters=params)
    return [tuple(row) for row in result.result_rows]


# --- the test -----------------------------------------------------------------------------


def test_partition_leader_killed_three_times_loses_and_duplicates_nothing(
    local_cluster: LocalCluster,
    tmp_path: Path,
    chdb_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    began = time.monotonic()
    # The sink's and the admin clients' retries log every refused connection to a dead broker.
    caplog.set_level(logging.CRITICAL, logger="aiokafka")
    prefix = f"lk{uuid.uuid4().hex[:8]}."
    env = {
        "PULSELINE_KAFKA_BOOTSTRAP": local_cluster.bootstrap,
        "PULSELINE_TOPIC_PREFIX": prefix,
        "PULSELINE_PARTITIONS": str(PARTITIONS),
        "PULSELINE_REPLICATION_FACTOR": "3",
        "PULSELINE_DATA_DIR": str(tmp_path / "data"),
        "PULSELINE_SINK_GROUP": f"{prefix}sink",
        # The suite's one embedded engine (chdb allows one data path per process).
        "PULSELINE_CLICKHOUSE_URL": f"chdb://{chdb_dir}",
        "PULSELINE_CLICKHOUSE_DATABASE": "leaderkill",
        "PULSELINE_SINK_FLUSH_INTERVAL_S": "0.3",
    }
    settings = StorageSettings.from_env(env)
    asyncio.run(create_topics(settings))
    assert wait_for(lambda: asyncio.run(full_isr(local_cluster.bootstrap, prefix)), 60)

    engine = Engine.open(settings)
    migrate(engine)
    # No background merge folds copies before the check: only the read (FINAL) may.
    engine.call(engine.client.command, f"SYSTEM STOP MERGES {engine.database}.events")
    sink = SupervisedSink(settings, engine)
    sink.thread.start()
    gateway = GatewayProcess(env, free_port(), tmp_path / "gateway.log")
    try:
        project, key = asyncio.run(provision(settings))
        gateway.start()
        gateway.wait_ready(60)
        figures = run_and_check(local_cluster, settings, engine, sink, gateway, project, key)
    finally:
        gateway.stop()
        sink.stop.set()
        sink.thread.join(60)
        engine.close()
    figures["wall_s"] = round(time.monotonic() - began, 1)
    print(f"\nLEADERKILL {json.dumps(figures)}")
    assert figures["lost"] == 0, figures
    assert figures["duplicates"] == 0, figures
    assert figures["phantoms"] == 0, figures


def run_and_check(
    cluster: LocalCluster,
    settings: StorageSettings,
    engine: Engine,
    sink: SupervisedSink,
    gateway: GatewayProcess,
    project: int,
    key: str,
) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(minutes=5)
    prefix = settings.topic_prefix
    topic = INGEST[CHOSEN_KIND].physical(prefix)
    load = Load(gateway.url, key)
    clients = [
        threading.Thread(target=load.client, args=(n,), name=f"client{n}", daemon=True)
        for n in range(CLIENTS)
    ]
    t0 = time.monotonic()
    for thread in clients:
        thread.start()
    kills: list[Kill] = []
    try:
        time.sleep(WARMUP_S)
        assert load.ok_after(t0) is not None, (
            f"no request acked before the kills\n{gateway.log_tail()}"
        )
        for _ in range(KILLS):
            kill = kill_leader(cluster, topic, prefix)
            kills.append(kill)
            assert kill.isr_at is not None
            # The gateway acks again before the next kill (a request sent after the ISR).
            assert wait_for(partial(acked_since, load, kill.isr_at), RECOVERY_TIMEOUT_S), (
                f"the gateway did not ack after broker {kill.broker} came back\n"
                f"{gateway.log_tail()}"
            )
        time.sleep(TAIL_S)
    finally:
        load.stopped_at = time.monotonic()
        load.stop.set()
        for thread in clients:
            thread.join(REQUEST_TIMEOUT_S + DRAIN_S + 10)
    load_s = load.stopped_at - t0
    assert not load.errors, load.errors
    assert not any(t.is_alive() for t in clients), "a client is still sending"
    assert gateway.proc is not None and gateway.proc.poll() is None, gateway.log_tail()

    log = list(load.log)
    sent = set(load.sent)
    acked = {i for o in log if o.ok for i in o.acked}
    assert {i for o in log if o.ok for i in o.ids} == acked, "a 2xx did not accept every event"
    permanent = [o for o in log if o.status is not None and not o.ok and o.status != 503]
    assert not permanent, f"permanent failures: {permanent[:3]}"

    # Every acked id is on the ingest topics; a second copy only from a batch sent again.
    records, ends = asyncio.run(read_ingest(settings))
    copies = Counter(str(event.event_id) for event in records)
    missing_on_kafka = acked - set(copies)
    retried = {i for o in log if not o.ok for i in o.ids}
    doubled_on_kafka = {i for i, n in copies.items() if n > 1}

    # What the real sink stored: the physical rows (merges stopped), and what a reader sees.
    sink.ends = ends
    assert sink.caught_up.wait(CATCH_UP_S), f"the sink did not catch up: {sink.failures}"
    sink.stop.set()
    sink.thread.join(60)
    sql, params = stored_counts_sql(engine.database, [project], ENVIRONMENT)
    physical = fold_counts(query(engine, sql, params))
    visible = fold_counts(query(engine, VISIBLE_SQL.format(db=engine.database), params))
    report = account({project: sent}, {project: acked}, visible)[project]
    physical_report = account({project: sent}, {project: acked}, physical)[project]
    page_sql, page_params = EventQuery(
        project, since, datetime.now(UTC) + timedelta(hours=1), len(sent) + 100
    ).sql(engine.database)
    page = Counter(str(row["event_id"]) for row in asyncio.run(engine.rows(page_sql, page_params)))

    windows = windows_503(log, load.stopped_at)
    statuses = Counter(str(o.status) for o in log)
    figures: dict[str, Any] = {
        "events_sent": len(sent),
        "acked": len(acked),
        "requests": len(log),
        "statuses": dict(statuses),
        "responses_503": statuses.get("503", 0),
        "longest_503_window_s": round(max((b - a for a, b in windows), default=0.0), 2),
        "windows_503": len(windows),
        "indeterminate_requests": statuses.get("None", 0),
        "indeterminate": report.indeterminate,
        "unacked_stored": report.unacked_stored,
        "lost": report.lost,
        "duplicates": report.duplicates,
        "phantoms": report.phantoms,
        "stored_visible": report.stored,
        "physical_extra_rows": physical_report.duplicates,
        "read_api_rows": sum(page.values()),
        "kafka_records": len(records),
        "kafka_extra_copies": len(records) - len(copies),
        "missing_on_kafka": len(missing_on_kafka),
        "sink_failures": sink.failures,
        "load_s": round(load_s, 1),
        "kills": [kill_figures(k, log, windows) for k in kills],
    }
    print(f"\nLEADERKILL-DETAIL report={report.as_json()} physical={physical_report.as_json()}")
    assert not missing_on_kafka, f"acked but not on Kafka: {sorted(missing_on_kafka)[:5]}"
    assert doubled_on_kafka <= retried, "a copy on Kafka that no client sent again"
    assert set(page) == set(visible.get(project, {})), "the read API differs from FINAL"
    assert all(n == 1 for n in page.values()), "the read API shows an event twice"
    assert len(kills) == KILLS
    return figures


def kill_figures(
    kill: Kill, log: list[Outcome], windows: list[tuple[float, float]]
) -> dict[str, Any]:
    first_ok = min((o.ended for o in log if o.ok and o.started >= kill.killed_at), default=None)
    end = kill.isr_at or kill.killed_at
    in_span = [o for o in log if o.status == 503 and kill.killed_at <= o.ended <= end + 10]
    mine = [b - a for a, b in windows if kill.killed_at <= a <= end]

    def since_kill(at: float | None) -> float | None:
        return None if at is None else round(at - kill.killed_at, 2)

    return {
        "leader": kill.broker,
        "new_leader": kill.new_leader,
        "first_success_after_kill_s": since_kill(first_ok),
        "responses_503": len(in_span),
        "longest_503_window_s": round(max(mine, default=0.0), 2),
        "leader_moved_s": since_kill(kill.leader_moved_at),
        "spawned_s": since_kill(kill.spawned_at),
        "restarted_s": since_kill(kill.restarted_at),
        "isr_back_s": since_kill(kill.isr_at),
    }
