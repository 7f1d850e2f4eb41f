"""``pulseline bench``: start a private pipeline, load it over HTTP, measure, write JSON.

Clients generate event ids and record every request's outcome (ok, failed, or
indeterminate on a timeout, a broken connection or a 5xx) with its event ids, for
``Profile.tenants`` projects with their own keys. Measured: gateway throughput and latency
percentiles, freshness (from the 202 to the event being visible in the read API) and,
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
import time
import uuid
from collections import Counter
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

    def record(
        self, tenant: int, outcome: str, status: str, sent: list[str], acked: list[str]
    ) -> None:
        """One request: ``outcome`` is ok, failed or indeterminate."""
        self.statuses[status] += 1
        self.sent.setdefault(tenant, set()).update(sent)
        self.acked.setdefault(tenant, set()).update(acked)
        self.acked_ids.extend(acked)
        self.log.append({"tenant": tenant, "outcome": outcome, "status": status, "event_ids": sent})


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {f"p{q}": round(float(np.percentile(arr, q)), 2) for q in (50, 95, 99)}


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
        load_t0 = time.perf_counter()
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
        elapsed = asyncio.run(_load(gateway, tenants, environment, profile, outcomes))
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
        )
    )
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"results written to {path}")
    return result
