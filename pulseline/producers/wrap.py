"""Run a job the way a shell would, and report it to its monitor on the side.

The job inherits stdin; its stdout and stderr go through pipes that are copied, as they
arrive, to this process's own stdout and stderr, and into one ring (``Tail``) for the
report. The start ping is sent while the job already runs; the finishing ping waits for it
(so the gateway gets them in order) and each is bounded by its timeout, so a server that
is down or slow costs the job at most about ``timeout_s`` after it ended, never its result.

SIGTERM and SIGHUP are passed on to the job; SIGINT is not, because a terminal sends it to
the whole foreground process group (the job gets it anyway), as when a shell waits for a
job. A job that dies of a signal gives ``128 + signal``, a command that cannot be found
127 and one that cannot be run 126, as in a shell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import httpx

from pulseline.producers.redact import Redactor
from pulseline.producers.tail import Tail, body, margin_for
from pulseline.producers.wrap_client import Pinger
from pulseline.producers.wrap_ping import WrapConfig, finish_ping, start_ping

CHUNK_BYTES = 64 * 1024
FORWARDED = (signal.SIGTERM, signal.SIGHUP)
# Output a job's own children write after it exited is still copied, but only this long
# is waited for it before reporting.
LATE_OUTPUT_S = 1.0


def exit_status(returncode: int) -> int:
    """A ``Popen.returncode`` as a shell reports it: ``-N`` (killed by signal N) is 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def body_limit(response: httpx.Response | None) -> int | None:
    """The server's ``Ping-Body-Limit``: it keeps only the first bytes of a body."""
    if response is None:
        return None
    try:
        limit = int(response.headers.get("Ping-Body-Limit", ""))
    except ValueError:
        return None
    return limit if limit >= 0 else None


@dataclass
class Capture:
    """The ring, shared by the two copying threads."""

    tail: Tail
    lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            self.tail.feed(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy(source: int, target: int, capture: Capture) -> None:
    writable = True
    while chunk := os.read(source, CHUNK_BYTES):
        capture.feed(chunk)
        if writable:
            try:
                _write_all(target, chunk)
            except OSError:  # our own output is gone (closed pipe): keep draining the job
                writable = False


@dataclass
class Job:
    process: subprocess.Popen[bytes] | None
    copiers: list[threading.Thread]
    started: float
    failed_to_start: int | None = None

    @classmethod
    def start(cls, command: Sequence[str], capture: Capture, out_fd: int, err_fd: int) -> Job:
        started = time.monotonic()
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            reason = "command not found" if code == 127 else (exc.strerror or str(exc))
            message = f"pulseline wrap: {command[0]}: {reason}\n".encode(errors="replace")
            capture.feed(message)
            _write_all(err_fd, message)
            return cls(None, [], started, code)
        assert process.stdout is not None and process.stderr is not None
        copiers = [
            threading.Thread(
                target=_copy, args=(pipe.fileno(), fd, capture), name=name, daemon=True
            )
            for pipe, fd, name in (
                (process.stdout, out_fd, "stdout"),
                (process.stderr, err_fd, "stderr"),
            )
        ]
        for copier in copiers:
            copier.start()
        return cls(process, copiers, started)

    def wait(self) -> tuple[int, float]:
        """The exit status and how long the job ran."""
        if self.process is None:
            assert self.failed_to_start is not None
            return self.failed_to_start, time.monotonic() - self.started
        returncode = self.process.wait()
        duration = time.monotonic() - self.started
        for copier in self.copiers:
            copier.join(LATE_OUTPUT_S)
        return exit_status(returncode), duration

    def drain(self) -> None:
        """Wait for all output, as a shell pipeline would, then release the pipes."""
        for copier in self.copiers:
            copier.join()
        if self.process is not None:
            for pipe in (self.process.stdout, self.process.stderr):
                if pipe is not None:
                    pipe.close()


_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Forwarding:
    """While the job starts and runs: pass SIGTERM and SIGHUP on to it, outlive a SIGINT.

    Installed before the job starts, so a signal that comes first is passed on once the
    job exists; a no-op outside the main thread (where Python cannot take signals).
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []
        self.previous: dict[int, _Handler] = {}

    def attach(self, process: subprocess.Popen[bytes] | None) -> None:
        self.process = process
        if process is not None:
            for signum in self.pending:
                process.send_signal(signum)
        self.pending.clear()

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        if self.process is None:
            self.pending.append(signum)
        else:
            self.process.send_signal(signum)

    def _ignore(self, signum: int, frame: FrameType | None) -> None:
        # A handler and not SIG_IGN: a child would inherit SIG_IGN across exec.
        return None

    def __enter__(self) -> Forwarding:
        if threading.current_thread() is threading.main_thread():
            for signum in FORWARDED:
                self.previous[signum] = signal.signal(signum, self._forward)
            self.previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._ignore)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _in_background(work: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=work, name="ping", daemon=True)
    thread.start()
    return thread


def run(
    command: Sequence[str],
    config: WrapConfig,
    url: str | None,
    redactor: Redactor,
    pinger: Pinger,
    *,
    out_fd: int = 1,
    err_fd: int = 2,
) -> int:
    """Run ``command``, ping ``url`` (None: do not ping) and return the job's exit status."""
    rid = str(uuid.uuid4())
    answers: list[httpx.Response | None] = []
    grace = config.timeout_s + 1.0
    starting = None
    if url is not None:
        start = start_ping(url, config, rid)
        starting = _in_background(lambda: answers.append(pinger.send(start)))
    margin = margin_for(redactor)
    capture = Capture(Tail(config.capture_bytes + margin))
    with Forwarding() as forwarding:
        job = Job.start(command, capture, out_fd, err_fd)
        forwarding.attach(job.process)
        code, duration = job.wait()
    if url is not None and starting is not None:
        starting.join(grace)
        server_limit = body_limit(answers[0]) if answers else None
        limit = (
            config.capture_bytes
            if server_limit is None
            else min(config.capture_bytes, server_limit)
        )
        with capture.lock:
            text = body(capture.tail, redactor, limit, margin)
            total = capture.tail.total
        finish = finish_ping(
            url, config, rid, exit_code=code, duration_s=duration, output_size=total, body=text
        )
        _in_background(lambda: pinger.send(finish)).join(grace)
    job.drain()
    return code
