"""Running a job in-process: exit statuses, pass-through, and what the pings carry
(real child processes, pings to a mock transport)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pulseline.producers.redact import MASK, Redactor
from pulseline.producers.wrap import body_limit, exit_status, run
from pulseline.producers.wrap_client import Pinger
from pulseline.producers.wrap_ping import WrapConfig

KEY = "pk_" + "a" * 20
BASE = f"http://gw/ping/{KEY}/nightly"


@pytest.mark.parametrize(
    ("returncode", "status"),
    [(0, 0), (1, 1), (3, 3), (255, 255), (-signal.SIGTERM, 143), (-signal.SIGKILL, 137), (-2, 130)],
)
def test_exit_status_is_a_shells(returncode: int, status: int) -> None:
    assert exit_status(returncode) == status


@pytest.mark.parametrize(
    ("headers", "limit"),
    [
        ({"Ping-Body-Limit": "10000"}, 10_000),
        ({"Ping-Body-Limit": "0"}, 0),
        ({}, None),
        ({"Ping-Body-Limit": "lots"}, None),
        ({"Ping-Body-Limit": "-5"}, None),
    ],
)
def test_body_limit(headers: dict[str, str], limit: int | None) -> None:
    assert body_limit(httpx.Response(200, headers=headers)) == limit
    assert body_limit(None) is None


class Gateway:
    def __init__(self, limit: str | None = "10000", status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.limit, self.status = limit, status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        headers = {"Ping-Body-Limit": self.limit} if self.limit is not None else {}
        return httpx.Response(self.status, text="OK", headers=headers)

    def pinger(self, warnings: list[str]) -> Pinger:
        return Pinger(
            1.0, warnings.append, transport=httpx.MockTransport(self), sleep=lambda _: None
        )


def _run(
    tmp_path: Path,
    command: list[str],
    gateway: Gateway | None = None,
    *,
    capture_bytes: int = 32 * 1024,
    redactor: Redactor | None = None,
) -> tuple[int, bytes, bytes, list[str]]:
    config = WrapConfig("http://gw", KEY, "nightly", capture_bytes=capture_bytes)
    warnings: list[str] = []
    pinger = (gateway or Gateway()).pinger(warnings)
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as o, err.open("wb") as e:
        code = run(
            command,
            config,
            BASE if gateway else None,
            redactor or Redactor(),
            pinger,
            out_fd=o.fileno(),
            err_fd=e.fileno(),
        )
    return code, out.read_bytes(), err.read_bytes(), warnings


def test_a_failing_job_pings_start_then_its_exit_code_with_its_output(tmp_path: Path) -> None:
    gateway = Gateway()
    code, out, err, warnings = _run(
        tmp_path, ["sh", "-c", "echo out; echo err >&2; exit 3"], gateway
    )
    assert (code, out, err, warnings) == (3, b"out\n", b"err\n", [])
    start, end = gateway.requests
    assert start.url.path == f"/ping/{KEY}/nightly/start"
    assert end.url.path == f"/ping/{KEY}/nightly/3"
    assert start.url.params["rid"] == end.url.params["rid"]
    assert sorted(end.content.splitlines()) == [b"err", b"out"]
    assert end.url.params["output_size"] == "8"
    assert 0 <= int(end.url.params["duration_ms"]) < 10_000


def test_a_good_job_pings_exit_code_0(tmp_path: Path) -> None:
    gateway = Gateway()
    code, out, _, _ = _run(tmp_path, ["true"], gateway)
    assert code == 0 and out == b""
    assert [r.url.path.rsplit("/", 1)[-1] for r in gateway.requests] == ["start", "0"]


def test_stdin_goes_to_the_job(tmp_path: Path) -> None:
    gateway = Gateway()
    reader, writer = os.pipe()
    os.write(writer, b"piped input\n")
    os.close(writer)
    saved = os.dup(0)
    os.dup2(reader, 0)
    try:
        code, out, _, _ = _run(tmp_path, ["cat"], gateway)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(reader)
    assert (code, out) == (0, b"piped input\n")
    assert gateway.requests[-1].content == b"piped input\n"


def test_a_job_killed_by_a_signal_exits_128_plus_it(tmp_path: Path) -> None:
    gateway = Gateway()
    code, _, _, _ = _run(tmp_path, ["sh", "-c", "kill -TERM $$"], gateway)
    assert code == 128 + signal.SIGTERM
    assert gateway.requests[-1].url.path.endswith(f"/{128 + signal.SIGTERM}")


@pytest.mark.parametrize(
    ("command", "code", "said"),
    [(["no-such-command-xyz"], 127, b"command not found"), (["/etc/passwd"], 126, b"denied")],
)
def test_a_command_that_cannot_run_is_127_or_126(
    tmp_path: Path, command: list[str], code: int, said: bytes
) -> None:
    gateway = Gateway()
    got, out, err, _ = _run(tmp_path, command, gateway)
    assert got == code and out == b""
    assert said in err.lower()
    assert gateway.requests[-1].url.path.endswith(f"/{code}")
    assert said in gateway.requests[-1].content.lower()


def test_the_body_is_the_redacted_tail_within_the_servers_limit(tmp_path: Path) -> None:
    gateway = Gateway(limit="20")
    script = "for i in $(seq 1 200); do echo line $i; done; echo key abc123"
    code, out, _, _ = _run(tmp_path, ["sh", "-c", script], gateway, redactor=Redactor(("abc123",)))
    assert code == 0
    assert out.endswith(b"line 200\nkey abc123\n")  # passed through as it was
    sent = gateway.requests[-1].content
    assert sent == f"line 200\nkey {MASK}\n".encode()[-20:]
    assert int(gateway.requests[-1].url.params["output_size"]) == len(out)


def test_the_capture_size_bounds_the_body(tmp_path: Path) -> None:
    gateway = Gateway(limit=None)
    _run(tmp_path, ["sh", "-c", "seq 1 5000"], gateway, capture_bytes=100)
    sent = gateway.requests[-1].content
    assert 0 < len(sent) <= 100 and sent.endswith(b"4999\n5000\n")


def test_without_a_url_nothing_is_sent_and_the_job_still_runs(tmp_path: Path) -> None:
    code, out, _, warnings = _run(tmp_path, ["sh", "-c", "echo x; exit 5"], None)
    assert (code, out, warnings) == (5, b"x\n", [])


def test_a_failing_server_changes_nothing_and_warns_once(tmp_path: Path) -> None:
    gateway = Gateway(status=503)
    code, out, _, warnings = _run(tmp_path, ["sh", "-c", "echo x; exit 4"], gateway)
    assert (code, out) == (4, b"x\n")
    assert len(warnings) == 1 and "HTTP 503" in warnings[0]
    # the start ping is tried three times; after it failed, the finishing ping once
    assert [r.url.path.rsplit("/", 1)[-1] for r in gateway.requests] == ["start"] * 3 + ["4"]


def test_sigterm_to_the_wrapper_reaches_the_job(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from pulseline.producers.redact import Redactor\n"
        "from pulseline.producers.wrap import run\n"
        "from pulseline.producers.wrap_client import Pinger\n"
        "from pulseline.producers.wrap_ping import WrapConfig\n"
        "config = WrapConfig(None, None, 'x')\n"
        "job = ['sh', '-c', 'trap \"echo got-term; exit 7\" TERM; echo ready; "
        "while :; do sleep 0.05; done']\n"
        "sys.exit(run(job, config, None, Redactor(), Pinger(1, print)))\n"
    )
    wrapper = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert wrapper.stdout is not None
    assert wrapper.stdout.readline() == b"ready\n"
    wrapper.send_signal(signal.SIGTERM)
    out, _ = wrapper.communicate(timeout=20)
    assert out == b"got-term\n"
    assert wrapper.returncode == 7
