"""Kafka fully down for 60 s under load: 503 + Retry-After, nothing lost, bounded memory.

The test runs its own broker (the session one is shared and must stay up) and the real
gateway as its own process (``python -m ingest_gateway``, the real producer and control
plane), so its resident memory can be read from ``/proc/<pid>/status``. A real sink stores
the ingest topics into embedded ClickHouse while they fill.

Timeline (monotonic seconds, ``t0`` when the load starts)::

    t0 .. t0+NORMAL_S            healthy traffic from CLIENTS concurrent httpx clients
    kill_at                      SIGTERM to the broker (its one JVM is broker and controller)
    gone_at                      the JVM has exited and both its ports refuse connections
    gone_at .. restart_at        DOWN_S of nothing listening (checked every second)
    restart_at .. ready_at       the same broker starts again, same port and data dir
    ready_at .. ready_at+AFTER_S the load goes on against the same gateway process

The clients post batches of events with client-generated ids and timestamps and keep
posting through the outage: after a non-2xx answer a client waits BACKOFF_S and sends a
new batch, ignoring ``Retry-After`` (the worst polite client: the load never lets up).
From the kill to the restart the clients send heavier events (OUTAGE_PAD_BYTES each).
Nothing is retried: an id that was not acknowledged stays unacknowledged (the accounting
calls it indeterminate), so any second copy of an id on Kafka or in storage would be the
gateway's or the pipeline's doing, not the client's.

The down window: requests *started* at least GRACE_S after the broker was confirmed gone
and *answered* before the restart began. Every one of them must be a 503 with
``Retry-After`` and the ``kafka_unavailable`` body, answered within the produce timeout
plus a margin. Requests in flight around the kill or the restart may end either way;
whatever their outcome, every answer of the whole run is a 2xx or a 503 (no other
status, no transport error, no hang past the same bound).

Accounting (``pulseline.accounting.account``): every acknowledged id is on the ingest
topics and is one row under ``FINAL`` in ClickHouse (lost 0, visible duplicates 0,
phantoms 0); no id is on Kafka twice (no client retried anything).

Memory: VmRSS of the gateway every second, two checks.

- Bounded: the peak during the outage (and after the restart) stays within
  RSS_GROWTH_LIMIT_MB of the peak before it. The clients are closed-loop, so at most
  CLIENTS requests (about 0.3 MB of JSON each, a few MB once parsed and stamped) are in
  the gateway at once, plus the Kafka client's bounded queue (one batch per partition,
  the rest waiting at most the request timeout) and a fresh client after a retired one:
  tens of MB at worst, allocator high-water marks included. 100 MB leaves room for
  noise and still catches a gateway that buffers a minute of traffic.
- Flat: over the second half of the down window RSS grows less than
  LATE_GROWTH_LIMIT_MB while the clients post more than three times that (checked). The
  first half sets the allocator's high-water mark; a gateway that kept even a third of
  what it refused (an unbounded buffer, a leaked producer per failed send) would keep
  growing through the second half. On a busy two-core machine the gateway parses only
  130-480 MB in the minute, too little for the 100 MB bound alone to prove this.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from deploy.local.broker import LocalBroker, alive
from pulseline.accounting import account, fold_counts, stored_counts_sql
from pulseline.ports import free_port
from pulseline.settings import CommonSettings, GatewaySettings, LocalKafkaSettings, StorageSettings
from pulseline.topic_admin import create_topics
from storage.client import Engine
from tests.integration.test_sdk_restart import GatewayProcess, provision, read_ingest
from tests.kafka_fixture import REPO, free_port_pair
from tests.live_sink import LiveSink, live_storage

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(400)]

CLIENTS = 4
BATCH = 20  # events per request
PAD_BYTES = 200  # per event while the broker is up: keeps the stored volume small
# Per event while it is down (the clients are told): the outage's posted bytes must
# dwarf the memory limit; these events are refused, so they cost no storage.
OUTAGE_PAD_BYTES = 16 * 1024
# A pad of letters only: digits could look like card numbers to the PII scrubber.
_LETTERS = str.maketrans("0123456789", "ghijklmnop")
PACE_S = 0.05  # a client's pause after a 2xx (keeps the healthy volume storable)
BACKOFF_S = 0.05  # its pause after anything else (Retry-After ignored on purpose)
NORMAL_S = 10.0
DOWN_S = 60.0
AFTER_S = 20.0
GRACE_S = 2.0
CLIENT_TIMEOUT_S = 30.0  # far past every bound below: a hang shows as a transport error
# A 503 comes after at most produce_timeout_s; two cores shared with a JVM that is
# starting or stopping (and another test run) stretch that, a hang would be far past.
LATENCY_MARGIN_S = 4.0
RECOVERY_LIMIT_S = 20.0  # from the broker answering metadata to the first 2xx
STEADY_AFTER_S = 5.0  # from the first 2xx on, every answer is a 2xx
RSS_GROWTH_LIMIT_MB = 100.0
LATE_GROWTH_LIMIT_MB = 10.0
LOAD_LIMIT_S = 200.0  # liveness only: a broker that never comes back ends the load
ENVIRONMENT = "kafkadown"


@dataclass(frozen=True)
class Request:
    """One POST: when (monotonic), how it ended, which ids it carried and got back."""

    client: int
    started: float
    ended: float
    status: int | None
    retry_after: str | None
    error: str | None  # the body's error code, or the transport error
    ids: tuple[str, ...]
    answered_ids: tuple[str, ...]
    posted_bytes: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def took(self) -> float:
        return self.ended - self.started


@dataclass
class Outage:
    """Stops the broker after NORMAL_S, keeps it down DOWN_S, starts it again."""

    broker: LocalBroker
    t0: float
    kill_at: float | None = None
    gone_at: float | None = None
    restart_at: float | None = None
    ready_at: float | None = None
    listening: list[float] = field(default_factory=list)  # probes that found a port open
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def ports(self) -> tuple[int, int]:
        return self.broker.settings.kafka_port, self.broker.settings.controller_port

    def refused(self) -> bool:
        for port in self.ports():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                continue
            return False
        return True

    def run(self) -> None:
        try:
            time.sleep(max(0.0, self.t0 + NORMAL_S - time.monotonic()))
            pid = self.broker.pid()
            assert pid is not None, "the broker was not running"
            self.kill_at = time.monotonic()
            assert self.broker.stop(), "the broker was not running"
            assert not alive(pid), f"broker process {pid} survived stop()"
            assert self.refused(), "a broker port still accepts connections"
            self.gone_at = time.monotonic()
            while time.monotonic() < self.gone_at + DOWN_S:
                time.sleep(min(1.0, max(0.0, self.gone_at + DOWN_S - time.monotonic())))
                if not self.refused():
                    self.listening.append(time.monotonic())
            self.restart_at = time.monotonic()
            # Not tie_to_parent: PR_SET_PDEATHSIG follows the forking *thread*, and this
            # one ends soon; the fixture stops the broker.
            self.broker.start()
            self.ready_at = time.monotonic()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


@dataclass
class RssSampler:
    """VmRSS of one process, every second, on a thread of its own."""

    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, MB)
    stop: threading.Event = field(default_factory=threading.Event)

    def read(self) -> float | None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
        return None

    def run(self) -> None:
        while not self.stop.is_set():
            mb = self.read()
            if mb is not None:
                self.samples.append((time.monotonic(), mb))
            self.stop.wait(1.0)

    def peak(self, start: float, end: float) -> float:
        inside = [mb for t, mb in self.samples if start <= t <= end]
        assert inside, f"no RSS sample between {start:.1f} and {end:.1f}"
        return max(inside)


def batch_of(client: int, n: int, pad_bytes: int) -> tuple[tuple[str, ...], bytes]:
    """BATCH events with their ids and timestamps set by the client."""
    now = datetime.now(UTC).isoformat()
    pad = os.urandom(pad_bytes // 2).hex().translate(_LETTERS)
    ids = tuple(str(uuid.uuid4()) for _ in range(BATCH))
    events = [
        {
            "event_id": event_id,
            "timestamp": now,
            "distinct_id": f"user-{client}-{i % 5}",
            "environment": ENVIRONMENT,
            **(
                {"kind": "error", "attributes": {"message": f"job {n}.{i} failed", "pad": pad}}
                if i % 2
                else {"kind": "event", "attributes": {"name": "checkout", "n": n, "pad": pad}}
            ),
        }
        for i, event_id in enumerate(ids)
    ]
    return ids, orjson.dumps(events)


def load_over(outage: Outage) -> bool:
    now = time.monotonic()
    if outage.error is not None or now > outage.t0 + LOAD_LIMIT_S:
        return True
    return outage.ready_at is not None and now >= outage.ready_at + AFTER_S


async def one_client(n: int, url: str, key: str, outage: Outage, log: list[Request]) -> None:
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=CLIENT_TIMEOUT_S,
    ) as client:
        sent = 0
        while not load_over(outage):
            down = outage.kill_at is not None and outage.restart_at is None
            ids, body = batch_of(n, sent, OUTAGE_PAD_BYTES if down else PAD_BYTES)
            sent += 1
            started = time.monotonic()
            status: int | None = None
            retry_after: str | None = None
            answered: tuple[str, ...] = ()
            try:
                response = await client.post("/v1/events", content=body)
                status, retry_after = response.status_code, response.headers.get("retry-after")
                doc = response.json()
                error = doc.get("error")
                answered = tuple(doc.get("event_ids", ()))
            except (httpx.HTTPError, ValueError) as exc:
                error = repr(exc)
            request = Request(
                n, started, time.monotonic(), status, retry_after, error, ids, answered, len(body)
            )
            log.append(request)
            await asyncio.sleep(PACE_S if request.ok else BACKOFF_S)


async def run_load(url: str, key: str, outage: Outage) -> list[Request]:
    log: list[Request] = []
    await asyncio.gather(*(one_client(n, url, key, outage, log) for n in range(CLIENTS)))
    return sorted(log, key=lambda r: r.started)


async def stored_copies(engine: Engine, project: int) -> tuple[Counter[str], Counter[str]]:
    """Rows per id for the project: physical (merges stopped) and under FINAL."""
    sql, params = stored_counts_sql(engine.database, [project], ENVIRONMENT)
    physical = fold_counts(
        (r["project_id"], r["event_id"], r["copies"]) for r in await engine.rows(sql, params)
    )
    final_sql = sql.replace(".events WHERE", ".events FINAL WHERE")
    assert "FINAL" in final_sql, sql
    final = fold_counts(
        (r["project_id"], r["event_id"], r["copies"]) for r in await engine.rows(final_sql, params)
    )
    return physical.get(project, Counter()), final.get(project, Counter())


def _since(moment: float | None, origin: float) -> float | None:
    return None if moment is None else round(moment - origin, 2)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    own = LocalBroker(
        LocalKafkaSettings.from_env(
            {},
            data_dir=tmp_path / "broker",
            kafka_port=free_port_pair(),
            kafka_dist_dir=REPO / ".pulseline" / "kafka" / "dist",
        )
    )
    own.start(tie_to_parent=True)
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture
def down_env(broker: LocalBroker, tmp_path: Path) -> dict[str, str]:
    """What ``env`` (tests/conftest.py) gives, on this test's own broker."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    values = {
        "PULSELINE_KAFKA_BOOTSTRAP": broker.settings.bootstrap,
        "PULSELINE_TOPIC_PREFIX": prefix,
        "PULSELINE_PARTITIONS": "2",
        "PULSELINE_DATA_DIR": str(tmp_path / "data"),
        "PULSELINE_SINK_GROUP": f"{prefix}sink",
    }
    asyncio.run(create_topics(CommonSettings.from_env(values)))
    return values


@pytest.fixture
def gateway(down_env: dict[str, str], tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(down_env, free_port(), tmp_path / "gateway.log")
    try:
        yield process
    finally:
        process.stop()


def test_kafka_down_for_a_minute_under_load(
    broker: LocalBroker,
    down_env: dict[str, str],
    chdb_dir: Path,
    gateway: GatewayProcess,
) -> None:
    began = time.monotonic()
    storage = StorageSettings.from_env(
        {
            **down_env,
            "PULSELINE_CLICKHOUSE_URL": f"chdb://{chdb_dir}",
            "PULSELINE_CLICKHOUSE_DATABASE": f"t_{uuid.uuid4().hex[:10]}",
            "PULSELINE_SINK_FLUSH_INTERVAL_S": "0.3",
        }
    )
    with live_storage(storage) as (engine, live):
        run_and_check(broker, down_env, storage, engine, live, gateway, began)


def run_and_check(
    broker: LocalBroker,
    env: dict[str, str],
    storage: StorageSettings,
    engine: Engine,
    live: LiveSink,
    gateway: GatewayProcess,
    began: float,
) -> None:
    settings = GatewaySettings.from_env(env)
    latency_bound = settings.produce_timeout_s + LATENCY_MARGIN_S
    project, key = asyncio.run(provision(storage))
    gateway.start()
    gateway.wait_ready()
    assert gateway.proc is not None
    pid = gateway.proc.pid

    rss = RssSampler(pid)
    sampler = threading.Thread(target=rss.run, name="rss", daemon=True)
    sampler.start()
    t0 = time.monotonic()
    outage = Outage(broker, t0)
    controller = threading.Thread(target=outage.run, name="outage", daemon=True)
    controller.start()
    try:
        log = asyncio.run(run_load(gateway.url, key, outage))
        load_end = time.monotonic()
        controller.join(30)
        ready_after = httpx.get(f"{gateway.url}/readyz", timeout=10).status_code
    finally:
        rss.stop.set()
        sampler.join(5)
    with (gateway.log_path.parent / "requests.jsonl").open("wb") as out:  # for forensics
        out.writelines(
            orjson.dumps({**vars(r), "ids": len(r.ids), "answered_ids": len(r.answered_ids)})
            + b"\n"
            for r in log
        )
    if outage.error is not None:
        raise outage.error
    kill_at, gone_at = outage.kill_at, outage.gone_at
    restart_at, ready_at = outage.restart_at, outage.ready_at
    assert kill_at and gone_at and restart_at and ready_at, "the outage did not run through"
    # Automatic recovery: the very process that saw the outage, never restarted.
    assert gateway.proc.poll() is None and gateway.proc.pid == pid, gateway.log_tail()

    # The down window, and what the gateway answered in it.
    window_start = gone_at + GRACE_S
    window = [r for r in log if r.started >= window_start and r.ended < restart_at]
    window_503 = [
        r
        for r in window
        if r.status == 503
        and r.retry_after == str(settings.retry_after_s)
        and r.error == "kafka_unavailable"
    ]
    first_503 = min((r.ended for r in log if r.status == 503 and r.ended >= kill_at), default=None)
    back = [r for r in log if r.ok and r.started >= restart_at]
    first_2xx = min((r.ended for r in back), default=None)
    steady = [r for r in log if first_2xx is not None and r.started >= first_2xx + STEADY_AFTER_S]
    statuses = Counter(str(r.status) if r.status is not None else "none" for r in log)
    at_kill = Counter(str(r.status) for r in log if r.started < kill_at <= r.ended)
    at_restart = Counter(str(r.status) for r in log if r.started < restart_at <= r.ended)
    window_statuses = Counter(str(r.status) if r.status is not None else "none" for r in window)
    posted_in_window_mb = sum(r.posted_bytes for r in window) / 2**20
    mid_window = (window_start + restart_at) / 2
    posted_late_mb = sum(r.posted_bytes for r in window if r.started >= mid_window) / 2**20

    # Accounting, from what the clients sent and what the gateway acknowledged.
    sent = {i for r in log for i in r.ids}
    acked = {i for r in log if r.ok for i in r.ids}
    echoed = [r for r in log if r.ok and r.answered_ids != r.ids]
    records, ends = asyncio.run(read_ingest(storage))
    on_kafka = Counter(str(event.event_id) for event in records)
    live.ends = ends
    caught_up = live.caught_up.wait(60)
    live.stop.set()
    live.thread.join(30)
    physical, final = asyncio.run(stored_copies(engine, project))
    report = account({project: sent}, {project: acked}, {project: final})[project]
    physical_report = account({project: sent}, {project: acked}, {project: physical})[project]

    rss_before = rss.peak(t0, kill_at)
    rss_during = rss.peak(kill_at, ready_at)
    rss_after = rss.peak(ready_at, load_end)
    rss_late_growth = rss.peak(mid_window, restart_at) - rss.peak(window_start, mid_window)
    timeline = {  # monotonic, like the requests' started and ended
        "t0": t0,
        "kill_at": kill_at,
        "gone_at": gone_at,
        "restart_at": restart_at,
        "ready_at": ready_at,
        "load_end": load_end,
        "rss": rss.samples,
    }
    (gateway.log_path.parent / "timeline.json").write_bytes(orjson.dumps(timeline))
    figures = {
        "requests": len(log),
        "statuses": dict(statuses),
        "window_s": round(restart_at - window_start, 1),
        "requests_in_window": len(window),
        "window_503_retry_after": len(window_503),
        "window_other": {k: v for k, v in window_statuses.items() if k != "503"},
        "in_flight_at_kill": dict(at_kill),
        "in_flight_at_restart": dict(at_restart),
        "max_latency_in_window_s": round(max((r.took for r in window), default=0.0), 2),
        "max_latency_all_s": round(max(r.took for r in log), 2),
        "median_latency_in_window_s": round(
            statistics.median(r.took for r in window) if window else 0.0, 3
        ),
        "posted_in_window_mb": round(posted_in_window_mb, 1),
        "posted_in_late_window_mb": round(posted_late_mb, 1),
        "broker_stop_s": round(gone_at - kill_at, 1),
        "broker_down_s": round(restart_at - gone_at, 1),
        "broker_start_s": round(ready_at - restart_at, 1),
        "first_503_after_kill_s": _since(first_503, kill_at),
        "first_2xx_after_restart_s": _since(first_2xx, restart_at),
        "first_2xx_after_ready_s": _since(first_2xx, ready_at),
        "rss_mb_before_max": round(rss_before, 1),
        "rss_mb_during_max": round(rss_during, 1),
        "rss_mb_after_max": round(rss_after, 1),
        "rss_mb_growth_during": round(rss_during - rss_before, 1),
        "rss_mb_growth_late_window": round(rss_late_growth, 1),
        "sent": report.sent,
        "acked": report.acked,
        "on_kafka": len(on_kafka),
        "kafka_duplicates": sum(n - 1 for n in on_kafka.values()),
        "stored": report.stored,
        "lost": report.lost,
        "duplicates": report.duplicates,
        "physical_duplicates": physical_report.duplicates,
        "phantoms": report.phantoms,
        "unacked": report.indeterminate,
        "unacked_stored": report.unacked_stored,
        "setup_s": round(t0 - began, 1),
        "accounting_s": round(time.monotonic() - load_end, 1),
        "wall_s": round(time.monotonic() - began, 1),
    }
    print(f"\nKAFKADOWN {json.dumps(figures)}")

    assert not outage.listening, f"a broker port answered during the outage: {outage.listening}"
    # Every answer of the run: a 2xx or a 503, in bounded time.
    assert set(statuses) <= {"202", "503"}, statuses
    assert max(r.took for r in log) < latency_bound, figures
    # The down window: 100% 503 + Retry-After + kafka_unavailable, nothing acknowledged.
    assert len(window) >= 10 * CLIENTS, figures
    assert window_503 == window, [r for r in window if r not in window_503][:5]
    assert first_503 is not None and first_503 < gone_at + GRACE_S + latency_bound, figures
    # Memory: bounded over the outage and after it, flat once its high-water mark is set.
    assert rss_during - rss_before < RSS_GROWTH_LIMIT_MB, figures
    assert rss_after - rss_before < RSS_GROWTH_LIMIT_MB, figures
    assert posted_late_mb > 3 * LATE_GROWTH_LIMIT_MB, figures
    assert rss_late_growth < LATE_GROWTH_LIMIT_MB, figures
    # Recovery by itself, and steady once back.
    assert first_2xx is not None and first_2xx - ready_at < RECOVERY_LIMIT_S, figures
    assert steady and all(r.ok for r in steady), Counter(r.status for r in steady)
    assert ready_after == 200

    # Nothing acknowledged is lost, duplicated or invented: on Kafka, and where users look.
    assert not echoed, "a 2xx answered other event ids than the client sent"
    assert caught_up, "the sink did not catch up"
    assert live.error is None, live.error
    assert (report.lost, report.duplicates, report.phantoms) == (0, 0, 0), report
    assert len(acked - set(on_kafka)) == 0, "acknowledged ids are missing from Kafka"
    assert len(set(on_kafka) - sent) == 0, "Kafka holds ids no client sent"
    assert max(on_kafka.values()) == 1, "an id is on Kafka twice (nobody retried it)"
    assert set(final) == set(on_kafka), "the sink did not store exactly what is on Kafka"
    assert 0 < len(acked) < len(sent), (len(acked), len(sent))
