"""``pulseline bench``: start a private pipeline, load it over HTTP, measure, write JSON.

Clients generate event ids and record every request's outcome (ok, failed, or
indeterminate on a timeout, a broken connection or a 5xx) with its event ids, for
``Profile.tenants`` projects with their own keys. Measured: gateway throughput and latency
percentiles, freshness (from the 202 to the event being visible in the read API) twice:
under load, by a probe that sends one event every ``Profile.probe_interval_s`` while the
load runs (``freshness_under_load_ms``), and idle, after the load (``freshness_ms``); and,
once storage has caught up (bounded by ``Profile.catch_up_s``), the accounting of every
event per tenant (``pulseline.accounting``): in the read API's view (visible duplicates)
and in the raw table without FINAL (physical duplicates).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from pulseline.accounting import account, fold_counts, stored_counts_sql
from pulseline.bench_gateway import TEMPLATES
from pulseline.bench_rates import Sampler, counter_total
from pulseline.bench_report import Request, plot, progress_line, show_progress
from pulseline.control.entities import EntityType, Project
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.keys import Scope
from pulseline.ports import free_port, free_port_pair
from pulseline.settings import CommonSettings, StorageSettings


@dataclass(frozen=True)
class Profile:
    duration_s: float = 20.0
    batch_size: int = 100
    concurrency: int = 8
    freshness_samples: int = 20
    tenants: int = 3
    catch_up_s: float = 60.0
    rate: float = 0.0  # events/s over all clients; 0: each client sends as fast as it can
    # The freshness probe that runs beside the load: one event per interval, its detail
    # polled every poll interval until visible or the timeout passes.
    probe_interval_s: float = 0.4
    probe_poll_s: float = 0.05
    probe_timeout_s: float = 15.0


ROUTED = "pulseline_processor_events_total"
SUNK = "pulseline_sink_rows_total"

# One event of each of the seven families, rotated through every batch.
FAMILIES: list[dict[str, Any]] = [
    orjson.loads(t % (b"00000000-0000-0000-0000-000000000000", 0)) for t in TEMPLATES
]


def mixed_batch(ids: list[str], environment: str) -> list[dict[str, Any]]:
    """Events of every family in turn, with the given ids, tagged with the run's environment."""
    return [
        {**FAMILIES[i % len(FAMILIES)], "event_id": eid, "environment": environment}
        for i, eid in enumerate(ids)
    ]


class Pacer:
    """Spaces sends so that all clients together stay at ``rate`` events/s (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.next = time.monotonic()

    async def take(self, events: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        slot = max(self.next, now)
        self.next = slot + events / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(frozen=True)
class Tenant:
    slug: str
    project_id: int
    ingest_key: str
    read_key: str


@dataclass
class Outcomes:
    statuses: Counter[str] = field(default_factory=Counter)
    acked_ids: list[str] = field(default_factory=list)
    sent: dict[int, set[str]] = field(default_factory=dict)
    acked: dict[int, set[str]] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[Request] = field(default_factory=list)
    t0: float = 0.0  # perf_counter when the load began: the timeline's zero

    def record(
        self, tenant: int, outcome: str, status: str, sent: list[str], acked: list[str]
    ) -> None:
        """One request: ``outcome`` is ok, failed or indeterminate."""
        self.statuses[status] += 1
        self.acked_ids.extend(acked)
        self._account(tenant, outcome, status, sent, acked)

    def record_probe(
        self, tenant: int, outcome: str, status: str, sent: list[str], acked: list[str]
    ) -> None:
        """A freshness probe's request: its events count in the accounting (so they are
        neither lost nor phantoms), not in the load's throughput, statuses or latency."""
        self._account(tenant, outcome, status, sent, acked, probe=True)

    def _account(
        self,
        tenant: int,
        outcome: str,
        status: str,
        sent: list[str],
        acked: list[str],
        **mark: bool,
    ) -> None:
        self.sent.setdefault(tenant, set()).update(sent)
        self.acked.setdefault(tenant, set()).update(acked)
        line = {"tenant": tenant, "outcome": outcome, "status": status, "event_ids": sent}
        self.log.append({**line, **mark})


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {f"p{q}": round(float(np.percentile(arr, q)), 2) for q in (50, 95, 99)}


def acked_rate(timeline: Sequence[Request], start_s: float, end_s: float) -> float | None:
    """Events/s acknowledged by the load's requests that completed in [start_s, end_s]
    (seconds since the load began, as the timeline's); None for an empty window."""
    if end_s <= start_s:
        return None
    acked = sum(n for t, ms, n in timeline if start_s <= t + ms / 1000 <= end_s)
    return round(acked / (end_s - start_s), 1)


def under_load_report(
    visible_ms: Sequence[float],
    timeouts: int,
    send_errors: int,
    timeout_s: float,
    load_events_per_s: float | None,
    window_s: float,
    poll_ms: Sequence[float] = (),
    last_miss_ms: Sequence[float] = (),
) -> dict[str, Any]:
    """``freshness_under_load_ms``: a probe that timed out enters the percentiles as the
    timeout itself, a lower bound (it was not visible within it), so timeouts push p95 up
    instead of vanishing; ``samples`` counts the probes seen, ``timeouts`` those never
    seen, ``send_errors`` those the gateway did not answer 202 (not measured);
    ``read_polls`` is how many detail requests the probe made (its own read load) and
    ``poll_ms`` how long they took (the measurement's resolution); ``last_miss_ms``: from
    the 202 to the start of the last poll that did not see the event, the other end of the
    bracket (the event became visible after that, and before the answer that showed it)."""
    measured = [*visible_ms, *([timeout_s * 1000] * timeouts)]
    return {
        **_percentiles(measured),
        "samples": len(visible_ms),
        "timeouts": timeouts,
        "timeout_s": timeout_s,
        "send_errors": send_errors,
        "load_events_per_s": load_events_per_s,
        "window_s": round(window_s, 1),
        "read_polls": len(poll_ms),
        "poll_ms": _percentiles(list(poll_ms)),
        "last_miss_ms": _percentiles(list(last_miss_ms)),
    }


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f} s"


def summary(result: dict[str, Any]) -> str:
    """The run's headline figures, for people; the JSON holds the rest."""
    idle = result["freshness_ms"]
    loaded = result["freshness_under_load_ms"]
    rate = loaded.get("load_events_per_s")
    lines = [
        f"gateway: {result['gateway']['events_per_s']:,.0f} events/s acked over the load",
        f"freshness idle (after the load): p50 {_seconds(idle.get('p50'))}, "
        f"p95 {_seconds(idle.get('p95'))}, p99 {_seconds(idle.get('p99'))} "
        f"({idle['samples']} samples)",
        f"freshness under load ({'-' if rate is None else f'{rate:,.0f}'} events/s): "
        f"p50 {_seconds(loaded.get('p50'))}, p95 {_seconds(loaded.get('p95'))}, "
        f"p99 {_seconds(loaded.get('p99'))} ({loaded['samples']} samples, "
        f"{loaded['timeouts']} timeouts > {loaded['timeout_s']:g} s, "
        f"{loaded['send_errors']} send errors)",
    ]
    if "error" in loaded:
        lines.append(f"freshness probe failed: {loaded['error']}")
    return "\n".join(lines)


def _outcome(status: int) -> str:
    """A 5xx may come after Kafka took the records (a produce timeout): indeterminate."""
    if status == 202:
        return "ok"
    return "indeterminate" if status >= 500 else "failed"


async def _load(
    gateway: str, tenants: list[Tenant], environment: str, profile: Profile, out: Outcomes
) -> float:
    deadline = time.monotonic() + profile.duration_s
    pacer = Pacer(profile.rate)
    limits = httpx.Limits(max_connections=profile.concurrency)
    async with httpx.AsyncClient(base_url=gateway, limits=limits, timeout=10) as client:

        async def worker(tenant: Tenant) -> None:
            headers = {
                "Authorization": f"Bearer {tenant.ingest_key}",
                "Content-Type": "application/json",
            }
            while time.monotonic() < deadline:
                await pacer.take(profile.batch_size)
                ids = [str(uuid.uuid4()) for _ in range(profile.batch_size)]
                batch = mixed_batch(ids, environment)
                started = time.perf_counter()
                try:
                    r = await client.post("/v1/events", content=json.dumps(batch), headers=headers)
                except httpx.ConnectError:
                    out.record(tenant.project_id, "failed", "failed", ids, [])
                    continue
                except httpx.HTTPError:
                    out.record(tenant.project_id, "indeterminate", "indeterminate", ids, [])
                    continue
                latency_ms = (time.perf_counter() - started) * 1000
                outcome = _outcome(r.status_code)
                acked = r.json().get("event_ids", ids) if outcome == "ok" else []
                out.record(tenant.project_id, outcome, str(r.status_code), ids, acked)
                out.timeline.append((started - load_t0, latency_ms, len(acked)))

        async def report() -> None:
            while time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                errors = sum(n for status, n in out.statuses.items() if status != "202")
                elapsed = time.perf_counter() - load_t0
                show_progress(
                    progress_line(elapsed, profile.duration_s, len(out.acked_ids), errors)
                )

        started = time.monotonic()
        load_t0 = out.t0 = time.perf_counter()
        await asyncio.gather(
            report(), *(worker(tenants[i % len(tenants)]) for i in range(profile.concurrency))
        )
        sys.stderr.write("\n")
        return time.monotonic() - started


async def _provision(settings: CommonSettings, run_id: str, count: int) -> list[Tenant]:
    """``count`` projects, each with an ingest and a read key, limits out of the load's reach."""
    store = ControlStore(settings)
    await store.start()
    try:
        service = ControlService(store)
        tenants = []
        for n in range(count):
            slug = f"bench-{run_id}-{n}"
            project = await service.create(
                EntityType.PROJECT,
                {
                    "name": f"Bench {n}",
                    "slug": slug,
                    "tier": "enterprise",
                    "events_per_second": 10_000_000,
                    "monthly_quota": 10**15,
                },
            )
            if not isinstance(project, Project):
                raise RuntimeError(f"the bench project {slug} could not be provisioned")
            _, ingest = await service.create_key(project.id, Scope.INGEST, "bench")
            _, read = await service.create_key(project.id, Scope.READ, "bench")
            tenants.append(Tenant(slug, project.id, ingest, read))
        return tenants
    finally:
        await store.stop()


async def _until_keys_known(gateway: str, api: str, tenants: list[Tenant]) -> None:
    """The gateway and the read API learn keys from the control topic, a moment later."""
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=5) as client:
        for tenant in tenants:
            for url, key in (
                (f"{gateway}/v1/events", tenant.ingest_key),
                (f"{api}/v1/events", tenant.read_key),
            ):
                while time.monotonic() < deadline:
                    headers = {"Authorization": f"Bearer {key}"}
                    if url.startswith(gateway):
                        r = await client.post(url, content=b"[]", headers=headers)
                    else:
                        r = await client.get(url, params={"limit": 1}, headers=headers)
                    if r.status_code != 401:
                        break
                    await asyncio.sleep(0.2)
                else:
                    raise RuntimeError(f"the pipeline did not learn the keys of {tenant.slug}")


def probe_event(event_id: str, environment: str) -> dict[str, Any]:
    """The probe's single event: a page view like the load's, marked by its visitor."""
    return {**mixed_batch([event_id], environment)[0], "distinct_id": "bench-freshness-probe"}


@dataclass
class Probe:
    """What the freshness probe saw; filled by its own thread, read once it has ended."""

    visible_ms: list[float] = field(default_factory=list)
    # Per probe seen: from its 202 to the start of the last poll that did not see it (0 if
    # the first did): it became visible after that and before ``visible_ms``.
    last_miss_ms: list[float] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    # Per event id sent: outcome, status, whether acked (202); indeterminate until answered,
    # so that an event the probe sent is accounted for even if the probe fails midway.
    requests: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    # perf_counter readings of the first and the last send: the probe window.
    first_send: float | None = None
    last_send: float | None = None
    # Each read API request's time (ms): the probe's own load on the storage process, and
    # the resolution of its measurement (a poll answers what was visible when it ran).
    poll_ms: list[float] = field(default_factory=list)
    error: str | None = None


async def _probe(
    gateway: str,
    api: str,
    tenant: Tenant,
    environment: str,
    profile: Profile,
    stop: threading.Event,
    out: Probe,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Until ``stop``: every ``probe_interval_s`` one single-event request to the gateway;
    from its 202, the event's detail in the read API every ``probe_poll_s`` until it is
    there or ``probe_timeout_s`` passes. Probes overlap; sends are not held up by polls."""
    ingest = {"Authorization": f"Bearer {tenant.ingest_key}"}
    read = {"Authorization": f"Bearer {tenant.read_key}"}
    async with (
        httpx.AsyncClient(base_url=gateway, timeout=10, transport=transport) as sender,
        httpx.AsyncClient(
            base_url=api, timeout=5, limits=httpx.Limits(max_connections=4), transport=transport
        ) as poller,
    ):

        async def one() -> None:
            eid = str(uuid.uuid4())
            now = time.perf_counter()
            out.first_send = now if out.first_send is None else out.first_send
            out.last_send = now
            out.requests[eid] = ("indeterminate", "unanswered", False)
            try:
                r = await sender.post(
                    "/v1/events",
                    content=json.dumps([probe_event(eid, environment)]),
                    headers={**ingest, "Content-Type": "application/json"},
                )
            except httpx.ConnectError:
                out.requests[eid] = ("failed", "failed", False)
                return
            except httpx.HTTPError:
                out.requests[eid] = ("indeterminate", "indeterminate", False)
                return
            acked = time.perf_counter()
            outcome = _outcome(r.status_code)
            out.requests[eid] = (outcome, str(r.status_code), outcome == "ok")
            if outcome != "ok":
                return
            missed = acked
            while time.perf_counter() - acked < profile.probe_timeout_s:
                polled = time.perf_counter()
                try:
                    got = await poller.get(f"/v1/events/{eid}", headers=read)
                except httpx.HTTPError:
                    got = None
                out.poll_ms.append((time.perf_counter() - polled) * 1000)
                if got is not None and got.status_code == 200:
                    out.visible_ms.append((time.perf_counter() - acked) * 1000)
                    out.last_miss_ms.append((missed - acked) * 1000)
                    return
                if got is not None and got.status_code == 404:  # an answer: not there yet
                    missed = polled
                await asyncio.sleep(profile.probe_poll_s)
            out.timed_out.append(eid)

        tasks = []
        while not await _stopped(stop, profile.probe_interval_s):
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)


async def _stopped(stop: threading.Event, within_s: float) -> bool:
    """Sleeps ``within_s`` in steps, True as soon as ``stop`` is set."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if stop.is_set():
            return True
        await asyncio.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
    return stop.is_set()


def _load_and_probe(
    gateway: str,
    api: str,
    tenants: list[Tenant],
    environment: str,
    profile: Profile,
    out: Outcomes,
) -> tuple[float, dict[str, Any], list[float]]:
    """The load, with the freshness probe beside it in its own thread and event loop (so
    its clock readings do not queue behind the load's callbacks); the probe's requests go
    to the first tenant and into ``out`` for the accounting. Returns the load's seconds,
    ``freshness_under_load_ms`` and the probe's samples (ms)."""
    probe, stop, tenant = Probe(), threading.Event(), tenants[0]

    def run_probe() -> None:
        try:
            asyncio.run(_probe(gateway, api, tenant, environment, profile, stop, probe))
        except Exception as exc:  # reported, and the load's figures still stand
            probe.error = f"{type(exc).__name__}: {exc}"[:300]

    thread = threading.Thread(target=run_probe, name="freshness-probe", daemon=True)
    thread.start()
    try:
        elapsed = asyncio.run(_load(gateway, tenants, environment, profile, out))
    finally:
        stop.set()
        print("waiting for the freshness probe's last events …", flush=True)
        thread.join()
    for eid, (outcome, status, ok) in probe.requests.items():
        out.record_probe(tenant.project_id, outcome, status, [eid], [eid] if ok else [])
    start = (probe.first_send or out.t0) - out.t0
    end = (probe.last_send or out.t0) - out.t0
    report = under_load_report(
        probe.visible_ms,
        len(probe.timed_out),
        sum(1 for outcome, _, _ in probe.requests.values() if outcome != "ok"),
        profile.probe_timeout_s,
        acked_rate(out.timeline, start, end),
        end - start,
        probe.poll_ms,
        probe.last_miss_ms,
    )
    if probe.error:
        report["error"] = probe.error
    return elapsed, report, probe.visible_ms


async def _freshness(gateway: str, api: str, keys: dict[str, Any], samples: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(samples):
            eid = str(uuid.uuid4())
            r = await client.post(
                f"{gateway}/v1/events",
                json=[{"kind": "pageview", "event_id": eid, "attributes": {"url": "/bench"}}],
                headers={"Authorization": f"Bearer {keys['ingest']}"},
            )
            if r.status_code != 202:
                continue
            acked = time.perf_counter()
            while time.perf_counter() - acked < 30:
                got = await client.get(
                    f"{api}/v1/events/{eid}", headers={"Authorization": f"Bearer {keys['read']}"}
                )
                if got.status_code == 200:
                    out.append((time.perf_counter() - acked) * 1000)
                    break
                await asyncio.sleep(0.02)
    return out


async def _visible(
    client: httpx.AsyncClient, api: str, tenant: Tenant, since: datetime, deadline: float
) -> Counter[str] | None:
    """Every event id the read API lists for the tenant, with how often; None past deadline."""
    seen: Counter[str] = Counter()
    params: dict[str, Any] = {"limit": 1000, "since": since.isoformat()}
    headers = {"Authorization": f"Bearer {tenant.read_key}"}
    while time.monotonic() < deadline:
        r = await client.get(f"{api}/v1/events", params=params, headers=headers)
        r.raise_for_status()
        page = r.json()
        seen.update(event["event_id"] for event in page["data"])
        if not page["next_cursor"]:
            return seen
        params["cursor"] = page["next_cursor"]
    return None


async def _catch_up(
    api: str, tenants: list[Tenant], out: Outcomes, since: datetime, bound_s: float
) -> tuple[dict[int, Counter[str]], float, bool]:
    """Pages the read API until every acked event is visible, or no more arrive, or
    ``bound_s`` passes; returns the last view, the seconds waited and whether complete."""
    started = time.monotonic()
    deadline = started + bound_s
    view: dict[int, Counter[str]] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            for tenant in tenants:
                seen = await _visible(client, api, tenant, since, deadline)
                if seen is not None:
                    view[tenant.project_id] = seen
            missing = sum(
                len(out.acked.get(t.project_id, set()) - view.get(t.project_id, Counter()).keys())
                for t in tenants
            )
            if missing == 0 or time.monotonic() >= deadline:
                return view, time.monotonic() - started, missing == 0
            await asyncio.sleep(1.0)


def _physical(
    env: dict[str, str], tenants: list[Tenant], environment: str
) -> dict[int, Counter[str]]:
    """Raw rows without FINAL; opened once the pipeline has stopped (chdb: one process)."""
    from storage.client import connect

    settings = StorageSettings.from_env(env)
    client = connect(settings)
    try:
        sql, params = stored_counts_sql(
            settings.clickhouse_database, [t.project_id for t in tenants], environment
        )
        return fold_counts(client.query(sql, parameters=params).result_rows)
    finally:
        client.close()


def _accounting(
    tenants: list[Tenant], out: Outcomes, stored: dict[int, Counter[str]]
) -> dict[str, Any]:
    reports = account(out.sent, out.acked, stored)
    empty = account({0: set()}, {}, {})[0]
    return {t.slug: reports.get(t.project_id, empty).as_json() for t in tenants}


def run_bench(profile: Profile, results_dir: Path) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="pulseline-bench-"))
    gw_port, api_port = free_port(), free_port()
    env = {
        **os.environ,
        "PULSELINE_DATA_DIR": str(data_dir),
        "PULSELINE_GATEWAY_PORT": str(gw_port),
        "PULSELINE_API_PORT": str(api_port),
        "PULSELINE_KAFKA_DIST_DIR": str(Path(".pulseline/kafka/dist").resolve()),
    }
    processors_port = free_port()
    env["PULSELINE_PROCESSORS_WEB_PORT"] = str(processors_port)
    if "PULSELINE_KAFKA_BOOTSTRAP" not in os.environ:
        env.setdefault("PULSELINE_KAFKA_PORT", str(free_port_pair()))
    launched = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pulseline.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Pulseline is running" in line:
                startup_s = time.monotonic() - launched
                break
        else:
            raise RuntimeError("the pipeline did not start")
        keys = json.loads((data_dir / "demo-keys.json").read_text())
        gateway, api = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{api_port}"
        run_id = uuid.uuid4().hex[:8]
        environment = f"bench-{run_id}"
        tenants = asyncio.run(_provision(CommonSettings.from_env(env), run_id, profile.tenants))
        asyncio.run(_until_keys_known(gateway, api, tenants))
        print(
            f"loading {gateway} for {profile.duration_s:.0f}s ({profile.concurrency} clients x "
            f"{profile.batch_size}-event batches, {len(tenants)} tenants) …",
            flush=True,
        )
        samplers = {
            "processors_routed": Sampler(
                f"http://127.0.0.1:{processors_port}/metrics",
                partial(counter_total, name=ROUTED, labels={"agent": "route"}),
            ),
            "sink_rows": Sampler(
                f"{api}/metrics", partial(counter_total, name=SUNK, labels={"table": "events"})
            ),
        }
        for sampler in samplers.values():
            sampler.start()
        outcomes = Outcomes()
        load_started = datetime.now(UTC) - timedelta(minutes=1)
        elapsed, under_load, fresh_loaded = _load_and_probe(
            gateway, api, tenants, environment, profile, outcomes
        )
        print("measuring freshness …", flush=True)
        fresh = asyncio.run(_freshness(gateway, api, keys, profile.freshness_samples))
        print(f"waiting for storage to catch up (at most {profile.catch_up_s:.0f}s) …", flush=True)
        visible, waited_s, complete = asyncio.run(
            _catch_up(api, tenants, outcomes, load_started, profile.catch_up_s)
        )
        rates = {name: sampler.stop() for name, sampler in samplers.items()}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    try:
        physical: dict[str, Any] = _accounting(
            tenants, outcomes, _physical(env, tenants, environment)
        )
    except Exception as exc:  # the figures above still stand without this view
        physical = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    log_path = data_dir / "requests.jsonl"
    log_path.write_text("".join(json.dumps(line) + "\n" for line in outcomes.log))
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "profile": asdict(profile),
        "startup_s": round(startup_s, 1),
        "gateway": {
            "events_per_s": round(len(outcomes.acked_ids) / elapsed, 1),
            "requests_per_s": round(len(outcomes.timeline) / elapsed, 1),
            "latency_ms": _percentiles([ms for _, ms, _ in outcomes.timeline]),
            "outcomes": dict(outcomes.statuses),
            "acked_events": len(outcomes.acked_ids),
        },
        "freshness_ms": {**_percentiles(fresh), "samples": len(fresh)},
        "freshness_under_load_ms": under_load,
        # From the services' own counters, sampled each second over load and catch-up.
        "rates": rates,
        "accounting": {
            "run_id": run_id,
            "tenants": {t.slug: t.project_id for t in tenants},
            "caught_up": complete,
            "catch_up_s": round(waited_s, 1),
            "visible": _accounting(tenants, outcomes, visible),
            "physical": physical,
            "requests_log": str(log_path),
        },
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    path = results_dir / f"{stamp}.json"
    result["plot"] = str(
        plot(
            outcomes.timeline,
            fresh,
            results_dir / f"{stamp}.png",
            f"pulseline bench {run_id}: {profile.concurrency} clients x {profile.batch_size}",
            under_load_ms=fresh_loaded,
        )
    )
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(summary(result))
    print(f"results written to {path}")
    return result
