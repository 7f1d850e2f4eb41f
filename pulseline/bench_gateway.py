"""The gateway's targets, measured: batched, single-event and ping throughput and latency,
and the ratio to a naive gateway that awaits ``send_and_wait`` per event.

A private broker (or ``PULSELINE_KAFKA_BOOTSTRAP``) with the registry's topics, one
project and monitor in the control plane, and the gateway as its own process (``python
-m ingest_gateway``, as deployed). The load comes from ``pulseline.loadgen`` in this
process. Only the gateway and the broker run: processors and storage are measured by
``pulseline bench`` itself.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from deploy.local.broker import LocalBroker
from pulseline.control.entities import EntityType, Monitor, Project
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.keys import Scope
from pulseline.loadgen import LoadResult, Request, closed_loop
from pulseline.ports import free_port, free_port_pair
from pulseline.settings import CommonSettings, LocalKafkaSettings

# One event of each family, rotated through a batch; "%s" takes the event id.
TEMPLATES = [
    b'{"kind":"pageview","event_id":"%s","distinct_id":"v-%d",'
    b'"attributes":{"url":"https://shop.example/p/42?utm_source=news","title":"Product"}}',
    b'{"kind":"event","event_id":"%s","distinct_id":"v-%d",'
    b'"attributes":{"name":"click","properties":{"selector":"button.buy","text":"Buy"}}}',
    b'{"kind":"transaction","event_id":"%s","distinct_id":"v-%d",'
    b'"attributes":{"name":"GET /api/items","method":"GET","status":"ok","duration_ms":12.5}}',
    b'{"kind":"web_vital","event_id":"%s","distinct_id":"v-%d",'
    b'"attributes":{"name":"LCP","value":1830.0,"rating":"good","path":"/p/42"}}',
    b'{"kind":"metric","event_id":"%s","distinct_id":"v-%d",'
    b'"attributes":{"name":"pg.connections","value":17,"type":"gauge","tags":{"db":"main"}}}',
    b'{"kind":"error","event_id":"%s","distinct_id":"v-%d","attributes":{"message":"boom",'
    b'"exception":[{"type":"ValueError","value":"bad input","stacktrace":{"frames":'
    b'[{"filename":"app.py","function":"handle","lineno":10,"in_app":true}]}}]}}',
    b'{"kind":"check_in","event_id":"%s","distinct_id":"v-%d",'
    b'"attributes":{"monitor":"nightly","status":"ok","duration_ms":5200,"output_size":1024}}',
]


@dataclass(frozen=True)
class GatewayProfile:
    duration_s: float = 15.0
    batch_size: int = 100
    batched_concurrency: int = 8
    single_concurrency: int = 32
    ping_concurrency: int = 32
    naive_duration_s: float = 10.0


def batch_body(size: int, counter: list[int]) -> bytes:
    parts = []
    for i in range(size):
        n = counter[0] = counter[0] + 1
        parts.append(TEMPLATES[i % len(TEMPLATES)] % (str(uuid.uuid4()).encode(), n % 5000))
    return b"[" + b",".join(parts) + b"]"


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {f"p{q}": round(float(np.percentile(arr, q)), 2) for q in (50, 95, 99)}


def summary(result: LoadResult) -> dict[str, Any]:
    elapsed = result.elapsed_s or 1.0
    return {
        "requests_per_s": round(result.requests / elapsed, 1),
        "events_per_s": round(result.accepted_events / elapsed, 1),
        "latency_ms": percentiles(result.latencies_ms),
        "outcomes": dict(result.statuses),
        "seconds": round(result.elapsed_s, 1),
    }


async def _provision(settings: CommonSettings) -> tuple[str, Monitor]:
    """A project whose limits the load cannot reach (the rate limiter itself still runs)."""
    store = ControlStore(settings)
    await store.start()
    try:
        service = ControlService(store)
        project = await service.create(
            EntityType.PROJECT,
            {
                "name": "Bench",
                "slug": "bench",
                "tier": "enterprise",
                "events_per_second": 10_000_000,
                "monthly_quota": 10**15,
            },
        )
        if not isinstance(project, Project):
            raise RuntimeError("the bench project could not be provisioned")
        _, key = await service.create_key(project.id, Scope.INGEST, "bench")
        monitor = await service.create(
            EntityType.MONITOR,
            {
                "project_id": project.id,
                "name": "Nightly",
                "slug": "nightly",
                "schedule": {"period_s": 86400},
            },
        )
        if not isinstance(monitor, Monitor):
            raise RuntimeError("the bench monitor could not be provisioned")
        return key, monitor
    finally:
        await store.stop()


class Gateway:
    """The gateway as a child process; ``naive`` swaps in the per-event producer."""

    def __init__(self, env: dict[str, str], naive: bool = False) -> None:
        self.port = free_port()
        module = "pulseline.naive_gateway" if naive else "ingest_gateway"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**env, "PULSELINE_GATEWAY_PORT": str(self.port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited: {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the gateway did not become ready within 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _progress(label: str) -> Callable[[LoadResult], None]:
    def show(result: LoadResult) -> None:
        rate = result.accepted_events / max(time.monotonic() - show.started, 1e-9)  # type: ignore[attr-defined]
        print(
            f"\r  {label}: {result.requests} requests, {rate:,.0f} accepted/s", end="", flush=True
        )

    show.started = time.monotonic()  # type: ignore[attr-defined]
    return show


def _run(
    port: int,
    make: Callable[[], Request],
    label: str,
    concurrency: int,
    seconds: float,
    ok: int = 202,
) -> dict[str, Any]:
    result = asyncio.run(
        closed_loop(
            "127.0.0.1",
            port,
            make,
            concurrency=concurrency,
            duration_s=seconds,
            ok_status=ok,
            on_progress=_progress(label),
        )
    )
    print()
    return summary(result)


@contextmanager
def private_kafka(prefix: str) -> Iterator[dict[str, str]]:
    """A ``PULSELINE_*`` environment on a private broker (or ``PULSELINE_KAFKA_BOOTSTRAP``)."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    env = {**os.environ, "PULSELINE_DATA_DIR": str(data_dir), "PULSELINE_LOG_LEVEL": "WARNING"}
    broker = None
    if "PULSELINE_KAFKA_BOOTSTRAP" not in os.environ:
        env["PULSELINE_KAFKA_PORT"] = str(free_port_pair())
        env.setdefault("PULSELINE_KAFKA_DIST_DIR", str(Path(".pulseline/kafka/dist").resolve()))
        broker = LocalBroker(LocalKafkaSettings.from_env(env))
        print(f"starting a private Kafka on {broker.settings.bootstrap} …", flush=True)
        broker.start(tie_to_parent=True)
    try:
        yield env
    finally:
        if broker is not None:
            broker.stop()


def run_gateway_bench(profile: GatewayProfile) -> dict[str, Any]:
    with private_kafka("pulseline-gwbench-") as env:
        from pulseline.topic_admin import create_topics

        settings = CommonSettings.from_env(env)
        asyncio.run(create_topics(settings))
        key, monitor = asyncio.run(_provision(settings))
        return _measure(profile, env, key, monitor)


def _measure(
    profile: GatewayProfile, env: dict[str, str], key: str, monitor: Monitor
) -> dict[str, Any]:
    json_headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    counter = [0]

    def batched() -> Request:
        body = batch_body(profile.batch_size, counter)
        return ("POST", "/v1/events", json_headers, body, profile.batch_size)

    def single() -> Request:
        return ("POST", "/v1/events", json_headers, batch_body(1, counter)[1:-1], 1)

    def ping() -> Request:
        return ("GET", f"/ping/{monitor.id}", {}, b"", 1)

    figures: dict[str, Any] = {}
    gateway = Gateway(env)
    try:
        print("batched: 100-event requests …", flush=True)
        figures["batched"] = _run(
            gateway.port, batched, "batched", profile.batched_concurrency, profile.duration_s
        )
        print("single-event requests …", flush=True)
        figures["single"] = _run(
            gateway.port, single, "single", profile.single_concurrency, profile.duration_s
        )
        print("Healthchecks-style pings …", flush=True)
        figures["pings"] = _run(
            gateway.port, ping, "pings", profile.ping_concurrency, profile.duration_s, ok=200
        )
    finally:
        gateway.stop()
    naive = Gateway(env, naive=True)
    try:
        print("naive gateway (send_and_wait per event), batched …", flush=True)
        figures["naive_batched"] = _run(
            naive.port, batched, "naive", profile.batched_concurrency, profile.naive_duration_s
        )
    finally:
        naive.stop()
    ours = figures["batched"]["events_per_s"]
    theirs = figures["naive_batched"]["events_per_s"] or 1.0
    figures["ratio_to_naive"] = round(ours / theirs, 1)
    figures["profile"] = asdict(profile)
    return figures
