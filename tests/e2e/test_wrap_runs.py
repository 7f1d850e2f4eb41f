"""``pulseline wrap`` through the whole pipeline of ``pulseline run``: real jobs become runs
in the read API with their status, exit code, duration, output size and redacted tail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pulseline.producers.redact import MASK
from tests.e2e.test_run import Pipeline, start, wait_for
from tests.e2e.test_run import pipeline as pipeline  # the fixtures
from tests.e2e.test_run import run_env as run_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SECRET = "tok-8c1f42d9e7"
WRAP = [sys.executable, "-m", "pulseline.cli", "wrap"]
BIG = 100_000  # bytes the long job writes: more than the 32 KiB tail the wrapper sends


@dataclass(frozen=True)
class Job:
    slug: str
    script: str
    exit_code: int
    sleeps_s: float


JOBS = [
    Job("e2e-ok", "echo backup done; sleep 1", 0, 1.0),
    Job("e2e-fail", "echo 'disk full' >&2; exit 3", 3, 0.0),
    Job(
        "e2e-secret",
        'echo "calling api with $API_TOKEN"; echo "Authorization: Bearer abc.def.ghi" >&2; '
        'echo "db password=hunter2"; exit 1',
        1,
        0.0,
    ),
    Job("e2e-long", f"sleep 3; head -c {BIG} /dev/zero | tr '\\0' x; echo; echo last line", 0, 3.0),
]


def api(env: dict[str, str], key: str, path: str) -> Any:
    r = httpx.get(
        f"http://127.0.0.1:{env['PULSELINE_API_PORT']}{path}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_wrapped_jobs_show_up_as_runs_in_the_read_api(
    pipeline: Pipeline, run_env: dict[str, str], tmp_path: Path
) -> None:
    start(pipeline)
    keys = json.loads((Path(run_env["PULSELINE_DATA_DIR"]) / "demo-keys.json").read_text())
    project = api(run_env, keys["admin"], f"/v1/admin/projects/{keys['project_id']}")
    job_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PULSELINE_URL": f"http://127.0.0.1:{run_env['PULSELINE_GATEWAY_PORT']}",
        "PULSELINE_PING_KEY": project["ping_key"],
        "API_TOKEN": SECRET,
    }

    began = time.monotonic()
    procs = [
        subprocess.Popen(
            [*WRAP, "--monitor", job.slug, "--", "sh", "-c", job.script],
            env=job_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for job in JOBS
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    wall_s = time.monotonic() - began

    for job, proc, (_, err) in zip(JOBS, procs, outputs, strict=True):
        assert proc.returncode == job.exit_code, (job.slug, err)
        assert b"warning" not in err, (job.slug, err)  # every ping was taken
    assert SECRET.encode() in outputs[2][0]  # the job's own stdout is untouched

    def monitor_ids() -> dict[str, str]:
        found = api(run_env, keys["read"], "/v1/monitors?limit=100")["data"]
        return {m["slug"]: m["monitor_id"] for m in found}

    def all_listed() -> dict[str, str] | None:
        ids = monitor_ids()
        return ids if {j.slug for j in JOBS} <= set(ids) else None

    ids = wait_for(all_listed, 60)
    assert ids, f"monitors never listed: {monitor_ids()}\n{pipeline.output()}"

    def finished() -> dict[str, list[dict[str, Any]]]:
        paths = {j.slug: f"/v1/monitors/{ids[j.slug]}/runs" for j in JOBS}
        runs = {slug: api(run_env, keys["read"], path)["data"] for slug, path in paths.items()}
        return {slug: [r for r in rs if r["status"] in ("ok", "fail")] for slug, rs in runs.items()}

    def all_finished() -> dict[str, list[dict[str, Any]]] | None:
        runs = finished()
        return runs if all(runs.values()) else None

    runs = wait_for(all_finished, 60)
    assert runs, f"runs never stored: {finished()}"

    for job in JOBS:
        [run] = runs[job.slug]
        assert run["status"] == ("ok" if job.exit_code == 0 else "fail"), run
        assert run["exit_code"] == job.exit_code, run
        # Timed on the wrapper's clock: at least the job's sleep, at most the test's wall time.
        assert job.sleeps_s * 1000 <= run["duration_ms"] <= wall_s * 1000, (run, wall_s)
        assert run["started_at"] is not None, run  # the start ping was paired by its run id

    assert "backup done" in runs["e2e-ok"][0]["output_tail"]
    assert "disk full" in runs["e2e-fail"][0]["output_tail"]

    secret_tail = runs["e2e-secret"][0]["output_tail"]
    assert f"calling api with {MASK}" in secret_tail
    assert f"Authorization: Bearer {MASK}" in secret_tail
    assert f"password={MASK}" in secret_tail
    for leaked in (SECRET, "abc.def.ghi", "hunter2"):
        assert leaked not in secret_tail

    long_run = runs["e2e-long"][0]
    assert long_run["output_size"] == BIG + len("\nlast line\n")  # every byte, not the tail
    assert long_run["output_tail"].endswith("last line\n")
    assert len(long_run["output_tail"].encode()) <= 32 * 1024
