"""``pulseline run``: the whole pipeline on one machine.

Order: local Kafka (unless PULSELINE_KAFKA_BOOTSTRAP is set) → topics → control plane
(the demo project and its keys, then ``pulseline.yaml`` if present) → storage (runs
migrations; sink and read API share it, since chdb opens in one process) → processors →
gateway → alerting. Each child logs to ``<data_dir>/logs/<name>.log``. A crashed child is restarted
with back-off (``pulseline.restart``); one that keeps crashing stops everything with exit
code 1. Ctrl-C or SIGTERM stops every child (SIGTERM, then SIGKILL) and the broker it
started. Children get PR_SET_PDEATHSIG, so even a killed supervisor leaves no orphans.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.local.broker import LocalBroker, die_with_parent
from pulseline.control.bootstrap import bootstrap
from pulseline.keys import demo_keys
from pulseline.restart import CrashHistory
from pulseline.settings import GatewaySettings, RunSettings, StorageSettings
from pulseline.topic_admin import create_topics

STOP_GRACE_S = 15.0


@dataclass
class Child:
    name: str
    module: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    history: CrashHistory = field(default_factory=CrashHistory)
    restart_at: float | None = None

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.restart_at = None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def stop_all(children: list[Child]) -> None:
    running = [c.proc for c in children if c.proc is not None and c.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in running:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def banner(gateway: GatewaySettings, storage: StorageSettings) -> str:
    keys = demo_keys(gateway.data_dir)
    gw = f"http://{gateway.gateway_host}:{gateway.gateway_port}"
    api = f"http://{storage.api_host}:{storage.api_port}"
    return f"""
Pulseline is running.
  gateway     {gw}        (POST /v1/events, docs at {gw}/docs)
  read API    {api}        (GET /v1/events, docs at {api}/docs)
  dashboard   {api}/dashboard/   (sign in with the read key below)
  browser SDK {gw}/sdk.js
  kafka       {gateway.bootstrap}
  clickhouse  {storage.clickhouse_dsn}
  logs        {gateway.data_dir.resolve() / "logs"}

Demo project {keys.project_id}:
  ingest key  {keys.ingest}
  read key    {keys.read}
  admin key   {keys.admin}   (secret: /v1/admin/… on the read API)

Try:
  curl -s {gw}/v1/events -H 'Authorization: Bearer {keys.ingest}' \\
       -d '[{{"kind": "pageview", "distinct_id": "visitor-1", "attributes": {{"url": "/"}}}}]'
  curl -s '{api}/v1/events?limit=5' -H 'Authorization: Bearer {keys.read}'

Ctrl-C stops everything.
"""


def run() -> int:
    kafka = RunSettings.from_env()
    gateway = GatewaySettings.from_env()
    storage = StorageSettings.from_env()
    data_dir = kafka.data_dir.resolve()
    env = {**os.environ, "PULSELINE_DATA_DIR": str(data_dir)}
    broker = LocalBroker(kafka) if kafka.uses_local_kafka else None
    started_broker = False
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    children = [
        Child("storage", "storage", data_dir / "logs" / "storage.log"),
        Child("processors", "stream_processors", data_dir / "logs" / "processors.log"),
        Child("gateway", "ingest_gateway", data_dir / "logs" / "gateway.log"),
        Child("alerting", "alerting", data_dir / "logs" / "alerting.log"),
    ]
    code = 0
    try:
        if broker is not None:
            started_broker = broker.pid() is None
            print(f"starting Kafka {kafka.kafka_version} on {kafka.bootstrap} …", flush=True)
            broker.start(tie_to_parent=True)
        asyncio.run(create_topics(kafka))
        seeded = asyncio.run(bootstrap(kafka, demo_keys(data_dir), kafka.seed_path(), os.environ))
        print(f"control plane: {seeded.writes} change(s), {seeded.unchanged} unchanged", flush=True)
        for project, name, raw in seeded.minted_keys:
            print(f"  new key {name!r} for project {project}: {raw}  (shown once)", flush=True)
        for child in children:
            child.start(env)
            print(f"started {child.name} (pid {child.proc.pid if child.proc else '-'})", flush=True)
        ready = _wait_http(
            f"http://{storage.api_host}:{storage.api_port}/readyz", 60
        ) and _wait_http(f"http://{gateway.gateway_host}:{gateway.gateway_port}/readyz", 60)
        if ready:
            print(banner(gateway, storage), flush=True)
        else:
            print("services did not become ready within 60 s; see the logs", file=sys.stderr)
        code = _supervise(children, env, lambda: stopping)
    finally:
        print("stopping …", flush=True)
        stop_all(children)
        if broker is not None and started_broker:
            broker.stop()
        print("stopped.", flush=True)
    return code


def _supervise(children: list[Child], env: dict[str, str], stopping: Callable[[], bool]) -> int:
    while not stopping():
        now = time.monotonic()
        for child in children:
            proc = child.proc
            if child.restart_at is not None and now >= child.restart_at:
                print(f"restarting {child.name}", flush=True)
                child.start(env)
            elif proc is not None and child.restart_at is None and proc.poll() is not None:
                delay = child.history.record(now)
                print(
                    f"{child.name} exited with {proc.returncode}; last log lines:\n{child.tail()}",
                    file=sys.stderr,
                    flush=True,
                )
                if delay is None:
                    print(f"{child.name} keeps crashing; giving up", file=sys.stderr)
                    return 1
                child.restart_at = now + delay
        time.sleep(0.2)
    return 0
