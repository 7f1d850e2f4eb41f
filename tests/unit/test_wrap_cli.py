"""``pulseline wrap`` as a subprocess, against a local HTTP server that records the pings.

The CLI takes seconds to start on a busy machine, so every scenario is started at once
(module fixture) and each test checks one of them.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from pulseline.commands.wrap import UsageError, split_command
from pulseline.producers.crontab import wrap_line
from pulseline.producers.redact import MASK
from pulseline.producers.wrap_slug import derive_slug
from tests.unit.test_crontab_cli import _command_of, _cron_split

PULSELINE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "pulseline")
OK_KEY = "pk_ok_" + "a" * 16
SECRETS = ("abc123xyz", "hunter2", "s3cr3t.t0k")
FAIL_SCRIPT = (
    "echo hi; echo token abc123xyz; echo password=hunter2 >&2; "
    "echo 'Authorization: Bearer s3cr3t.t0k'; exit 3"
)
CRON_KEY = "pk_cron_" + "c" * 16
CRON_COMMAND = 'read line; echo "got $line at $(date +\\%Y)" | tr a-z A-Z; exit 2'
CRON_WRAPPED = wrap_line(f"*/5 * * * * {CRON_COMMAND} %the input%", PULSELINE) or ""
# The job prints when it ends, to time what the wrapper adds after it.
TIMED_SCRIPT = "echo hi; date +%s.%N >&2; exit 3"


@dataclass(frozen=True)
class Ping:
    path: str
    params: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    pings: list[Ping] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, key: str) -> list[Ping]:
        with self.lock:
            return [p for p in self.pings if p.path.startswith(f"/ping/{key}/")]


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            url = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            with recorder.lock:
                recorder.pings.append(Ping(url.path, params, body))
            self.send_response(200)
            self.send_header("Ping-Body-Limit", "10000")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@dataclass
class Done:
    returncode: int
    stdout: bytes
    stderr: bytes
    ended_at: float


@dataclass
class Scenarios:
    recorder: Recorder
    results: dict[str, Done]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenarios]:
    recorder = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hanging = socket.socket()  # accepts connections (backlog) and never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    base_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path_factory.mktemp("home"))}
    down = f"http://127.0.0.1:{_closed_port()}"
    silent = f"http://127.0.0.1:{hanging.getsockname()[1]}"
    wrap, timed = [PULSELINE, "wrap"], ["sh", "-c", TIMED_SCRIPT]
    ping_env = {"PULSELINE_URL": url, "PULSELINE_PING_KEY": CRON_KEY, "SHELL": "/bin/sh"}
    shell_command, stdin = _cron_split(_command_of(CRON_WRAPPED))
    runs: dict[str, tuple[list[str], dict[str, str], bytes | None]] = {
        "fail": (
            [*wrap, "--", "sh", "-c", FAIL_SCRIPT],
            {"PULSELINE_URL": url, "PULSELINE_PING_KEY": OK_KEY, "API_TOKEN": "abc123xyz"},
            None,
        ),
        "down": (
            [*wrap, "--url", down, "--ping-key", OK_KEY, "-m", "down", "--", *timed],
            {},
            None,
        ),
        "hanging": (
            [*wrap, "--url", silent, "--timeout", "0.5", "-m", "hang", "--", *timed],
            {"PULSELINE_PING_KEY": OK_KEY},
            None,
        ),
        # a line of a crontab wrapped by pulseline crontab wrap, run as cron runs it
        "cron": (["/bin/sh", "-c", shell_command], ping_env, stdin),
    }
    procs = {
        name: subprocess.Popen(
            argv,
            env=base_env | extra,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name, (argv, extra, stdin) in runs.items()
    }
    results: dict[str, Done] = {}

    def wait(name: str, proc: subprocess.Popen[bytes]) -> None:
        out, err = proc.communicate(runs[name][2], timeout=90)
        results[name] = Done(proc.returncode, out, err, time.time())

    waiters = [threading.Thread(target=wait, args=item) for item in procs.items()]
    try:
        for waiter in waiters:
            waiter.start()
        for waiter in waiters:
            waiter.join(100)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        server.shutdown()
        hanging.close()
    assert set(results) == set(runs)
    yield Scenarios(recorder, results)


def _job_ended(done: Done) -> float:
    return float(done.stderr.decode().splitlines()[0])


def test_start_then_fail_with_the_exit_code_and_output(scenarios: Scenarios) -> None:
    done = scenarios.results["fail"]
    assert done.returncode == 3
    assert b"warning" not in done.stderr
    start, end = scenarios.recorder.of(OK_KEY)[:2]
    slug = derive_slug(shlex.join(["sh", "-c", FAIL_SCRIPT]))
    assert start.path == f"/ping/{OK_KEY}/{slug}/start"
    assert end.path == f"/ping/{OK_KEY}/{slug}/3"
    assert start.params["rid"] == end.params["rid"] == str(uuid.UUID(start.params["rid"]))
    assert start.params["create"] == end.params["create"] == "1"
    assert b"hi\n" in end.body and b"token " in end.body
    assert int(end.params["output_size"]) == len(done.stdout) + len(done.stderr)


def test_output_is_passed_through_untouched(scenarios: Scenarios) -> None:
    done = scenarios.results["fail"]
    assert done.stdout == b"hi\ntoken abc123xyz\nAuthorization: Bearer s3cr3t.t0k\n"
    assert done.stderr == b"password=hunter2\n"


def test_secrets_are_redacted_in_what_was_sent(scenarios: Scenarios) -> None:
    end = scenarios.recorder.of(OK_KEY)[1]
    for secret in SECRETS:
        assert secret.encode() not in end.body
    assert end.body.count(MASK.encode()) == 3
    assert f"token {MASK}".encode() in end.body
    assert f"password={MASK}".encode() in end.body
    assert f"Bearer {MASK}".encode() in end.body


def test_server_down_warns_once_and_keeps_the_exit_code(scenarios: Scenarios) -> None:
    done = scenarios.results["down"]
    assert done.returncode == 3
    assert done.stdout == b"hi\n"
    warnings = [line for line in done.stderr.splitlines() if b"warning" in line]
    assert len(warnings) == 1
    assert b"could not ping" in warnings[0] and OK_KEY.encode() not in warnings[0]
    assert done.ended_at - _job_ended(done) < 4.0


def test_a_server_that_never_answers_costs_about_the_timeout(scenarios: Scenarios) -> None:
    done = scenarios.results["hanging"]
    assert done.returncode == 3
    assert done.stdout == b"hi\n"
    assert len([line for line in done.stderr.splitlines() if b"warning" in line]) == 1
    # --timeout 0.5: the rest of the start ping and the finishing ping are all that is
    # waited for after the job (with the default 5 s, the start ping alone is 5 s). A
    # loaded CI host took 3.56 s; 4.5 s still tells the two apart.
    assert done.ended_at - _job_ended(done) < 4.5


@pytest.mark.parametrize(
    ("tokens", "slug", "command"),
    [
        (["--", "sh", "-c", "x"], None, ["sh", "-c", "x"]),
        (["--", "--monitor", "x"], None, ["--monitor", "x"]),
        (["nightly", "--", "job", "--", "a"], "nightly", ["job", "--", "a"]),
        (["job", "arg"], None, ["job", "arg"]),  # an argparse that already ate the --
    ],
)
def test_the_command_line_after_the_options(
    tokens: list[str], slug: str | None, command: list[str]
) -> None:
    assert split_command(tokens) == (slug, command)


@pytest.mark.parametrize("tokens", [[], ["--"], ["nightly", "--"]])
def test_a_command_is_required(tokens: list[str]) -> None:
    with pytest.raises(UsageError):
        split_command(tokens)


def test_a_wrapped_crontab_line_runs_and_reports(scenarios: Scenarios) -> None:
    assert CRON_WRAPPED.startswith(f"*/5 * * * * {PULSELINE} wrap --monitor read-")
    done = scenarios.results["cron"]
    assert done.returncode == 2
    assert done.stdout == f"GOT THE INPUT AT {time.gmtime().tm_year}\n".encode()
    assert done.stderr == b""
    start, end = scenarios.recorder.of(CRON_KEY)
    slug = derive_slug(CRON_COMMAND)
    assert (start.path, end.path) == (
        f"/ping/{CRON_KEY}/{slug}/start",
        f"/ping/{CRON_KEY}/{slug}/2",
    )
    assert start.params["rid"] == end.params["rid"]
    assert end.body == done.stdout
