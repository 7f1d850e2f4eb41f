"""``pulseline wrap`` against the real gateway and a real broker: its pings become start
and fail check-ins on the ingest topic, with one run id, the exit code and the redacted
output."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from pathlib import Path

import pytest

from pulseline.producers.redact import MASK
from pulseline.producers.wrap_slug import derive_slug
from pulseline.settings import CommonSettings
from tests.integration.test_pings import consume, provision, serve

pytestmark = pytest.mark.integration

PULSELINE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "pulseline")
SECRET = "tok-5e3a91c7"
JOB = [
    "sh",
    "-c",
    'echo "step 1 ok"; echo "calling api with $API_TOKEN"; '
    'echo "Authorization: Bearer abc.def" >&2; echo "db password=hunter2"; exit 4',
]
FRESH = ["sh", "-c", "echo fresh"]


def test_wrapped_jobs_become_check_ins(env: dict[str, str], tmp_path: Path) -> None:
    settings = CommonSettings.from_env(env)
    project, monitor = asyncio.run(provision(settings))
    # The gateway's own scrubber off: whatever is masked was masked by the wrapper.
    with serve(env | {"PULSELINE_SCRUB_PII": "false"}) as base:
        job_env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PULSELINE_URL": base,
            "PULSELINE_PING_KEY": project.ping_key,
            "API_TOKEN": SECRET,
        }
        runs = [
            subprocess.Popen(
                [PULSELINE, "wrap", *args],
                env=job_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for args in (["--monitor", monitor.slug, "--", *JOB], ["--", *FRESH])
        ]
        (out, err), (fresh_out, fresh_err) = (run.communicate(timeout=60) for run in runs)

    assert runs[0].returncode == 4
    assert SECRET.encode() in out  # the job's own output is passed through as it was
    assert b"warning" not in err, err
    assert (runs[1].returncode, fresh_out) == (0, b"fresh\n")
    assert b"warning" not in fresh_err, fresh_err

    seen = [event for _, event in asyncio.run(consume(settings, 4))]
    by = {(e.attributes["monitor"], e.attributes["status"]): e for e in seen}
    fresh_slug = derive_slug(shlex.join(FRESH))  # made by ?create=1
    assert set(by) == {
        ("nightly", "start"),
        ("nightly", "fail"),
        (fresh_slug, "start"),
        (fresh_slug, "ok"),
    }
    start, fail = by[("nightly", "start")], by[("nightly", "fail")]
    assert start.attributes["run_id"] == fail.attributes["run_id"]
    assert start.attributes["monitor_id"] == fail.attributes["monitor_id"] == monitor.id
    assert fail.attributes["exit_code"] == 4
    assert fail.attributes["user_agent"].startswith("pulseline-wrap/")
    output = fail.attributes["output"]
    assert "step 1 ok" in output
    assert f"calling api with {MASK}" in output
    assert f"Authorization: Bearer {MASK}" in output
    assert f"password={MASK}" in output
    for secret in (SECRET, "abc.def", "hunter2"):
        assert secret not in output
    # What the job wrote (reported by the wrapper), not the redacted body the gateway got.
    assert fail.attributes["output_size"] == len(out) + len(err) != len(output.encode())
    ok = by[(fresh_slug, "ok")]
    assert ok.attributes["exit_code"] == 0
    assert ok.attributes["output"] == "fresh\n"
    assert ok.attributes["run_id"] == by[(fresh_slug, "start")].attributes["run_id"]
