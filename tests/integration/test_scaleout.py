"""Scale-out on one machine: 3 brokers (RF 3, min ISR 2), processor workers and sink
consumers as real subprocesses.

1. Throughput of the processors with 1 and with 2 workers (printed; run with ``-s``).
2. Rebalancing without loss: a second worker joins and the first leaves while events
   flow, and one of two sinks leaves; every event is stored once (event ids summed over
   both sinks' own embedded engines) and counted (project_counts totals == events sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local.cluster import LocalCluster
from pulseline.ports import free_port
from pulseline.settings import CommonSettings, ProcessorSettings
from pulseline.topic_admin import create_topics
from pulseline.topics import INGEST, PROJECT_COUNTS, PROJECT_COUNTS_BY_PROJECT
from tests.helpers import eventually, stamped
from tests.integration.count_forensics import count_forensics
from tests.kafka_fixture import REPO

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(600)]

PARTITIONS = 6
# How long the surviving worker may take to fold what it was handed (a loaded 2-core host).
CATCH_UP_S = 240
PROJECTS = 12
INGEST_PARTITIONS = len(INGEST) * PARTITIONS
THROUGHPUT_EVENTS = 3000
REBALANCE_EVENTS = 6000


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(
        tmp_path_factory.mktemp("cluster"), dist_dir=REPO / ".pulseline" / "kafka" / "dist"
    )
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def cluster(local_cluster: LocalCluster) -> str:
    return local_cluster.bootstrap


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    name: str
    module: str
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    restarts: int = 0

    def start(self) -> Proc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / f"{self.name}.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env={**os.environ, **self.env},
                cwd=self.workdir,  # Faust keeps a data dir in its working directory
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def revive(self) -> None:
        """Restart a process that died on its own, as ``pulseline run`` or Kubernetes would."""
        if not self.stopped and self.proc is not None and self.proc.poll() is not None:
            self.restarts += 1
            self.start()

    def stop(self) -> None:
        self.stopped = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self) -> str:
        path = self.workdir / f"{self.name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return f"--- {self.name}\n" + "\n".join(lines[-25:])


@dataclass
class Pipeline:
    bootstrap: str
    root: Path
    prefix: str = field(default_factory=lambda: f"so{uuid.uuid4().hex[:8]}.")
    procs: list[Proc] = field(default_factory=list)

    @property
    def common(self) -> dict[str, str]:
        return {
            "PULSELINE_KAFKA_BOOTSTRAP": self.bootstrap,
            "PULSELINE_TOPIC_PREFIX": self.prefix,
            "PULSELINE_PARTITIONS": str(PARTITIONS),
            "PULSELINE_REPLICATION_FACTOR": "3",
            "PULSELINE_LOG_LEVEL": "WARNING",
        }

    def create_topics(self) -> None:
        asyncio.run(create_topics(CommonSettings.from_env(self.common)))

    def worker(self, name: str) -> Proc:
        env = {
            **self.common,
            "PULSELINE_PROCESSORS_WEB_PORT": str(free_port()),
            "PULSELINE_PROCESSORS_EMIT_INTERVAL_S": "0.5",
        }
        proc = Proc(name, "stream_processors", env, self.root / name).start()
        self.procs.append(proc)
        return proc

    def sink(self, name: str) -> Proc:
        data = self.root / name
        env = {
            **self.common,
            "PULSELINE_DATA_DIR": str(data),
            "PULSELINE_CLICKHOUSE_URL": f"chdb://{data / 'clickhouse'}",
            "PULSELINE_API_PORT": str(free_port()),
            "PULSELINE_SINK_GROUP": f"{self.prefix}sink",
            "PULSELINE_SINK_FLUSH_INTERVAL_S": "0.5",
        }
        proc = Proc(name, "storage", env, data).start()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


@pytest.fixture
def pipeline(cluster: str, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(cluster, tmp_path)
    p.create_topics()
    try:
        yield p
    finally:
        p.stop()


def scraped(worker: Proc, name: str, label: str) -> float | None:
    """The sum of ``name`` samples whose labels contain ``label``; None: not answering."""
    url = f"http://127.0.0.1:{worker.env['PULSELINE_PROCESSORS_WEB_PORT']}/metrics"
    try:
        text = httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and label in line
    )


def ingest_held(worker: Proc) -> int:
    """Ingest partitions the worker holds, from its own /metrics (-1: not answering)."""
    held = scraped(worker, "pulseline_processor_assigned_partitions", ".ingest.")
    return -1 if held is None else int(held)


def events(count: int, minute: datetime) -> list[tuple[bytes, bytes, str, str]]:
    """(key, value, topic suffix, event_id): projects and families spread over partitions."""
    out = []
    for i in range(count):
        kind = "pageview" if i % 2 else "event"
        doc = stamped(kind, i % PROJECTS + 1, timestamp=minute.isoformat(), distinct_id=f"v{i}")
        out.append((f"{doc['project_id']}:v{i}".encode(), orjson.dumps(doc), kind, doc["event_id"]))
    return out


async def produce(bootstrap: str, prefix: str, batch: list[tuple[bytes, bytes, str, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(f"{prefix}ingest.{kind}", value, key=key)
            for key, value, kind, _ in batch
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class Counts:
    """Follows derived.project_counts; the latest (largest) count per key, summed."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.consumer = AIOKafkaConsumer(
            PROJECT_COUNTS.physical(prefix),
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
        )
        self.latest: dict[tuple[int, str, str], int] = {}

    async def __aenter__(self) -> Counts:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def total(self) -> int:
        for records in (await self.consumer.getmany(timeout_ms=200)).values():
            for r in records:
                doc = orjson.loads(r.value)
                key = (doc["project_id"], doc["kind"], doc["minute"])
                self.latest[key] = max(self.latest.get(key, 0), doc["count"])
        return sum(self.latest.values())


async def wait_all_held(workers: list[Proc], timeout_s: float = 180) -> list[int]:
    async def check() -> bool:
        held = [ingest_held(w) for w in workers]
        return sum(held) == INGEST_PARTITIONS and min(held) > 0

    assert await eventually(check, timeout_s, 0.5), [ingest_held(w) for w in workers]
    return [ingest_held(w) for w in workers]


def throughput(p: Pipeline, count: int, workers: int, brokers: list[int]) -> dict[str, Any]:
    procs = [p.worker(f"w{i + 1}") for i in range(workers)]
    worker_pids = [w.proc.pid for w in procs if w.proc is not None]
    minute = datetime.now(UTC).replace(second=30, microsecond=0)
    batch = events(count, minute)

    async def scenario() -> dict[str, Any]:
        held = await wait_all_held(procs)
        async with Counts(p.bootstrap, p.prefix) as counts:
            cpu_before = cpu_seconds(worker_pids), cpu_seconds(brokers), time.monotonic()
            started = time.monotonic()
            await produce(p.bootstrap, p.prefix, batch)
            produced_s = time.monotonic() - started
            done = await eventually(lambda: _at_least(counts, count), 240, 0.2)
            elapsed = time.monotonic() - started
            if not done:
                # No figure to report (a host too loaded to count them in 240 s); losses are
                # the join/leave test's to find, after waiting for the group to catch up.
                pytest.xfail(f"counted {await counts.total()} of {count}\n{p.logs()}")
            wall = time.monotonic() - cpu_before[2]
            cpu = cpu_seconds(worker_pids) - cpu_before[0], cpu_seconds(brokers) - cpu_before[1]
        per_worker = [scraped(w, "pulseline_processor_events_total", "route") or 0.0 for w in procs]
        return {
            "workers": workers,
            "events": count,
            "produce_s": round(produced_s, 2),
            "seconds": round(elapsed, 2),
            "events_per_s": round(count / elapsed),
            "ingest_partitions_held": held,
            "events_per_worker": [round(x) for x in per_worker],
            "cpu_share_of_one_core": {
                "workers": round(cpu[0] / wall, 2),
                "brokers": round(cpu[1] / wall, 2),
            },
            "load_average_1m": os.getloadavg()[0],
        }

    try:
        return asyncio.run(scenario())
    finally:
        for proc in procs:
            proc.stop()


async def _at_least(counts: Counts, count: int) -> bool:
    return await counts.total() >= count


def test_throughput_with_one_and_with_two_workers(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    brokers = [pid for node in local_cluster.nodes() if (pid := node.pid()) is not None]
    results = []
    for workers in (1, 2):
        p = Pipeline(local_cluster.bootstrap, tmp_path / f"run{workers}")
        p.create_topics()
        try:
            results.append(throughput(p, THROUGHPUT_EVENTS, workers, brokers))
        finally:
            p.stop()
    print("\nSCALEOUT throughput " + json.dumps(results))
    assert all(r["events_per_s"] > 0 for r in results)
    assert all(min(r["events_per_worker"]) > 0 for r in results)


async def committed_everything(bootstrap: str, group: str, topics: list[str]) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        parts = [TopicPartition(t, i) for t in topics for i in range(PARTITIONS)]
        ends = await consumer.end_offsets(parts)
        done = await admin.list_consumer_group_offsets(group)
        return all(ends[tp] == 0 or (tp in done and done[tp].offset >= ends[tp]) for tp in parts)
    finally:
        await consumer.stop()
        await admin.close()


READ_BACK = """
import json, sys
from pulseline.settings import StorageSettings
from storage.client import connect
c = connect(StorageSettings.from_env({}, clickhouse_url="chdb://" + sys.argv[1]))
ids = [str(r[0]) for r in c.query("SELECT DISTINCT event_id FROM pulseline.events").result_rows]
counts = [
    [r[0], r[1], r[2].isoformat(), int(r[3])]
    for r in c.query(
        "SELECT project_id, kind, minute, max(count) FROM pulseline.project_counts "
        "GROUP BY project_id, kind, minute"
    ).result_rows
]
print(json.dumps({"ids": ids, "counts": counts}))
"""


def stored(sink: Proc) -> dict[str, Any]:
    path = Path(sink.env["PULSELINE_CLICKHOUSE_URL"].removeprefix("chdb://"))
    done = subprocess.run(
        [sys.executable, "-c", READ_BACK, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_workers_and_sinks_join_and_leave_without_losing_an_event(pipeline: Pipeline) -> None:
    p = pipeline
    sinks = [p.sink("sink1"), p.sink("sink2")]
    w1 = p.worker("w1")
    minute = datetime.now(UTC).replace(second=30, microsecond=0)
    batch = events(REBALANCE_EVENTS, minute)
    chunks = [batch[i::6] for i in range(6)]
    seen: dict[str, list[int]] = {}

    async def scenario() -> None:
        seen["w1 alone"] = await wait_all_held([w1])
        await produce(p.bootstrap, p.prefix, chunks[0])
        await produce(p.bootstrap, p.prefix, chunks[1])
        w2 = p.worker("w2")
        seen["w2 joined"] = await wait_all_held([w1, w2])
        await produce(p.bootstrap, p.prefix, chunks[2])
        sinks[1].stop()
        await produce(p.bootstrap, p.prefix, chunks[3])
        w1.stop()
        seen["w1 left"] = await wait_all_held([w2])
        await produce(p.bootstrap, p.prefix, chunks[4])
        await produce(p.bootstrap, p.prefix, chunks[5])
        # Lag is not loss: wait until the worker has routed every event and applied every
        # count delta (its group committed their topics to the end), then read the counters.
        folded = [spec.physical(p.prefix) for spec in (*INGEST.values(), PROJECT_COUNTS_BY_PROJECT)]
        group = ProcessorSettings.from_env({}, topic_prefix=p.prefix).app_id
        began = time.monotonic()
        caught_up = await eventually(
            lambda: committed_everything(p.bootstrap, group, folded),
            CATCH_UP_S,
            1.0,
        )
        seen["caught up after s"] = [round(time.monotonic() - began) if caught_up else -1]
        async with Counts(p.bootstrap, p.prefix) as counts:
            await eventually(lambda: _at_least(counts, REBALANCE_EVENTS), 30, 0.3)
            seen["counted"] = [await counts.total()]
        topics = [spec.physical(p.prefix) for spec in (*INGEST.values(), PROJECT_COUNTS)]

        async def stored_everything() -> bool:
            for sink in sinks:
                sink.revive()
            return await committed_everything(p.bootstrap, f"{p.prefix}sink", topics)

        assert await eventually(stored_everything, 60, 0.5), f"not all stored\n{p.logs()}"

    asyncio.run(scenario())
    sinks[0].stop()
    seen["sink restarts"] = [s.restarts for s in sinks]
    print(f"\nSCALEOUT rebalance {json.dumps(seen)}")
    assert seen["w1 alone"] == [INGEST_PARTITIONS]
    assert seen["w2 joined"][0] < INGEST_PARTITIONS and seen["w2 joined"][1] > 0
    assert seen["w1 left"] == [INGEST_PARTITIONS]

    results = [stored(s) for s in sinks]
    ids = [set(r["ids"]) for r in results]
    print(f"SCALEOUT sinks stored {[len(i) for i in ids]} distinct events")
    assert ids[0] | ids[1] == {eid for *_, eid in batch}
    latest: dict[tuple[int, str, str], int] = {}
    for r in results:
        for project, kind, at, n in r["counts"]:
            latest[(project, kind, at)] = max(latest.get((project, kind, at), 0), n)
    stored_total = sum(latest.values())
    print(f"SCALEOUT counted {seen['counted'][0]}, stored counts {stored_total}")
    assert seen["counted"][0] <= REBALANCE_EVENTS, "the processors counted an event twice"
    if seen["counted"][0] < REBALANCE_EVENTS:
        # Every event is stored (asserted above). A counter short after the worker caught
        # up lost events; one short while it still lags is reported with its figure.
        short = REBALANCE_EVENTS - seen["counted"][0]
        found = asyncio.run(count_forensics(p.bootstrap, p.prefix))
        print(f"SCALEOUT count forensics\n{found}")
        if seen["caught up after s"] == [-1]:
            pytest.xfail(
                f"counters short by {short}, still lagging after {CATCH_UP_S} s: {seen}\n{found}"
            )
        pytest.fail(f"counters lost {short} events after the worker caught up: {seen}\n{found}")
    assert stored_total == REBALANCE_EVENTS, "the stored counters lost or doubled events"
