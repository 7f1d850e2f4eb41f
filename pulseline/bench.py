"""``pulseline bench``: start a private pipeline, load it over HTTP, measure, write JSON.

Clients generate event ids and record every request's outcome (ok, failed, or
indeterminate on timeout). Measured: gateway throughput and latency percentiles, and
freshness, from the 202 to the event being visible in the read API.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from pulseline.ports import free_port, free_port_pair


@dataclass(frozen=True)
class Profile:
    duration_s: float = 20.0
    batch_size: int = 100
    concurrency: int = 8
    freshness_samples: int = 20


@dataclass
class Outcomes:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    acked_ids: list[str] = field(default_factory=list)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {f"p{q}": round(float(np.percentile(arr, q)), 2) for q in (50, 95, 99)}


async def _load(gateway: str, key: str, profile: Profile, out: Outcomes) -> float:
    deadline = time.monotonic() + profile.duration_s
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=profile.concurrency)
    async with httpx.AsyncClient(
        base_url=gateway, headers=headers, limits=limits, timeout=10
    ) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                batch: list[dict[str, Any]] = [
                    {
                        "kind": "event",
                        "event_id": str(uuid.uuid4()),
                        "distinct_id": "b",
                        "attributes": {"name": "bench"},
                    }
                    for _ in range(profile.batch_size)
                ]
                started = time.perf_counter()
                try:
                    r = await client.post("/v1/events", content=json.dumps(batch))
                except httpx.TimeoutException:
                    out.statuses["indeterminate"] += 1
                    continue
                except httpx.HTTPError:
                    out.statuses["failed"] += 1
                    continue
                out.latencies_ms.append((time.perf_counter() - started) * 1000)
                out.statuses[str(r.status_code)] += 1
                if r.status_code == 202:
                    out.acked_ids.extend(e["event_id"] for e in batch)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(profile.concurrency)))
        return time.monotonic() - started


async def _freshness(gateway: str, api: str, keys: dict[str, Any], samples: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(samples):
            eid = str(uuid.uuid4())
            r = await client.post(
                f"{gateway}/v1/events",
                json=[{"kind": "pageview", "event_id": eid}],
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
        print(
            f"loading {gateway} for {profile.duration_s:.0f}s "
            f"({profile.concurrency} clients x {profile.batch_size}-event batches) …",
            flush=True,
        )
        outcomes = Outcomes()
        elapsed = asyncio.run(_load(gateway, keys["ingest"], profile, outcomes))
        print("measuring freshness …", flush=True)
        fresh = asyncio.run(_freshness(gateway, api, keys, profile.freshness_samples))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "profile": asdict(profile),
        "startup_s": round(startup_s, 1),
        "gateway": {
            "events_per_s": round(len(outcomes.acked_ids) / elapsed, 1),
            "requests_per_s": round(len(outcomes.latencies_ms) / elapsed, 1),
            "latency_ms": _percentiles(outcomes.latencies_ms),
            "outcomes": dict(outcomes.statuses),
            "acked_events": len(outcomes.acked_ids),
        },
        "freshness_ms": {**_percentiles(fresh), "samples": len(fresh)},
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"results written to {path}")
    return result
