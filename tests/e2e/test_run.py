"""``pulseline run`` end to end: its own local broker, real HTTP, Ctrl-C, restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kafka_fixture import REPO, free_port, free_port_pair

pytestmark = pytest.mark.e2e


class Pipeline:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pulseline.cli", "run"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if "Pulseline is running" in line:
                self.ready.set()

    def child_pids(self) -> list[int]:
        return [
            int(line.rsplit("pid ", 1)[1].rstrip(")"))
            for line in self.lines
            if line.startswith("started ")
        ]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)

    def output(self) -> str:
        return "\n".join(self.lines[-60:])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PULSELINE_DATA_DIR": str(tmp_path / "data"),
        "PULSELINE_KAFKA_PORT": str(free_port_pair()),
        "PULSELINE_KAFKA_DIST_DIR": str(REPO / ".pulseline" / "kafka" / "dist"),
        "PULSELINE_GATEWAY_PORT": str(free_port()),
        "PULSELINE_API_PORT": str(free_port()),
        "PULSELINE_PARTITIONS": "2",
        "PULSELINE_SINK_FLUSH_INTERVAL_S": "0.3",
    }


@pytest.fixture
def pipeline(run_env: dict[str, str]) -> Iterator[Pipeline]:
    p = Pipeline(run_env)
    yield p
    if p.proc.poll() is None:
        p.proc.kill()
        p.proc.wait()


def start(p: Pipeline) -> None:
    assert p.ready.wait(120), f"pipeline not ready:\n{p.output()}"


def get_events(env: dict[str, str], key: str, **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(
        f"http://127.0.0.1:{env['PULSELINE_API_PORT']}/v1/events",
        params={"limit": 1000, **params},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def wait_for(check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_events_round_trip_and_ctrl_c_leaves_nothing_behind(
    pipeline: Pipeline, run_env: dict[str, str]
) -> None:
    start(pipeline)
    keys = json.loads((Path(run_env["PULSELINE_DATA_DIR"]) / "demo-keys.json").read_text())
    gateway = f"http://127.0.0.1:{run_env['PULSELINE_GATEWAY_PORT']}"
    attributes = {
        "error": {"message": "boom"},
        "transaction": {"name": "GET /", "duration_ms": 12.5},
        "pageview": {"url": "/"},
        "event": {"name": "signup"},
        "web_vital": {"name": "LCP", "value": 1200},
        "check_in": {"monitor": "nightly", "status": "ok"},
        "metric": {"name": "cpu", "value": 0.5},
    }
    kinds = list(attributes)
    sent = [
        {
            "kind": k,
            "event_id": str(uuid.uuid4()),
            "distinct_id": "v1",
            "attributes": {**attributes[k], "n": i},
        }
        for i, k in enumerate(kinds)
    ]
    r = httpx.post(
        f"{gateway}/v1/events",
        json=sent,
        headers={"Authorization": f"Bearer {keys['ingest']}"},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == len(kinds)

    want = {e["event_id"] for e in sent}
    stored = wait_for(
        lambda: {e["event_id"] for e in get_events(run_env, keys["read"])} == want, 30
    )
    assert stored, f"stored: {get_events(run_env, keys['read'])}"
    by_id = {e["event_id"]: e for e in get_events(run_env, keys["read"])}
    for event in sent:  # every family comes back with what was sent
        stored_event = by_id[event["event_id"]]
        assert stored_event["kind"] == event["kind"]
        assert stored_event["attributes"]["n"] == event["attributes"]["n"]
    errors = get_events(run_env, keys["read"], kind="error")
    assert [e["event_id"] for e in errors] == [sent[0]["event_id"]]
    assert errors[0]["project_id"] == keys["project_id"]

    def counted() -> bool:
        r = httpx.get(
            f"http://127.0.0.1:{run_env['PULSELINE_API_PORT']}/v1/stats/counts",
            headers={"Authorization": f"Bearer {keys['read']}"},
            timeout=10,
        )
        return sorted(row["kind"] for row in r.json()["data"]) == sorted(kinds)

    assert wait_for(counted, 30), "the processors' counts never reached storage"

    admin = httpx.get(
        f"http://127.0.0.1:{run_env['PULSELINE_API_PORT']}/v1/admin/projects",
        headers={"Authorization": f"Bearer {keys['admin']}"},
        timeout=10,
    )
    assert admin.status_code == 200, admin.text
    assert [p["slug"] for p in admin.json()["data"]] == ["demo"]

    broker_pid = int((Path(run_env["PULSELINE_DATA_DIR"]) / "kafka" / "broker.pid").read_text())
    pids = [*pipeline.child_pids(), broker_pid]
    assert len(pids) == 5  # storage, processors, gateway, alerting and the broker
    assert pipeline.stop() == 0, pipeline.output()
    assert not [pid for pid in pids if alive(pid)], "processes left behind after Ctrl-C"

    again = Pipeline(run_env)
    try:
        start(again)
        assert {e["event_id"] for e in get_events(run_env, keys["read"])} == want
    finally:
        again.stop()
