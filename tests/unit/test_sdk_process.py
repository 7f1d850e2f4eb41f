"""The SDK across process boundaries: flushing at interpreter exit, and after ``os.fork()``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulseline.sdk import Client
from pulseline.sdk.testing import FakeGateway

pytestmark = pytest.mark.timeout(30)

KEY = "pl_ingest_test"
REPO = Path(__file__).resolve().parents[2]

EXITING_SCRIPT = """
import sys
import pulseline.sdk as pulseline

pulseline.init(sys.argv[1], key="pl_ingest_test", flush_interval=60,
               shutdown_timeout=float(sys.argv[2]))
print(pulseline.capture_message("last words"), flush=True)
heavy = ("pydantic", "orjson", "fastapi", "aiokafka", "ingest_gateway", "stream_processors")
print(",".join(name for name in heavy if name in sys.modules), flush=True)
"""


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway() as fake:
        yield fake


def run_script(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", EXITING_SCRIPT, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )
    return done, time.monotonic() - started


def test_what_was_captured_is_sent_when_the_interpreter_exits(gateway: FakeGateway) -> None:
    done, _ = run_script(gateway.url, "5")

    assert done.returncode == 0, done.stderr
    event_id, imported = done.stdout.split("\n")[:2]
    assert imported == "", "the SDK must need only the standard library and httpx"
    events = gateway.wait_for_events(1, timeout=1)
    assert [(e["event_id"], e["attributes"]["message"]) for e in events] == [
        (event_id, "last words")
    ]


def test_the_flush_at_exit_is_bounded_by_shutdown_timeout(gateway: FakeGateway) -> None:
    gateway.answer(202, hang=15)

    done, took = run_script(gateway.url, "0.5")

    assert done.returncode == 0, done.stderr
    assert took < 6  # interpreter start-up included; without the bound it would be 10 s+
    assert gateway.events() == []


def _wait_child(pid: int, timeout: float) -> int | None:
    """The child's exit code, or ``None`` (after killing it) when it did not exit in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_sends_on_its_own_connection_and_the_parent_carries_on(
    gateway: FakeGateway,
) -> None:
    client = Client(gateway.url, key=KEY, flush_interval=60)
    try:
        before = client.capture_message("parent before fork")
        assert client.flush(5)
        # Another thread holds the client's lock across the fork, as the sender thread or a
        # capture on another thread may: a child that kept the lock would hang on capture.
        holding, release = threading.Event(), threading.Event()

        def hold_lock() -> None:
            with client._cond:
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=hold_lock)
        holder.start()
        assert holding.wait(5)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code and the pipe
            code = 1
            try:
                os.close(read_end)
                child_id = client.capture_message("child")
                flushed = client.flush(5)
                os.write(write_end, f"{child_id}".encode())
                stats = client.stats
                code = 0 if flushed and stats.sent == 1 and stats.captured == 1 else 2
            finally:
                os._exit(code)
        os.close(write_end)
        release.set()
        holder.join()
        after = client.capture_message("parent after fork")
        assert client.flush(5)
        exit_code = _wait_child(pid, timeout=10)
        with os.fdopen(read_end) as pipe:
            child_id = pipe.read()
    finally:
        client.close(0)

    assert exit_code == 0, "the child hung (None) or did not deliver its event"
    by_id = {e["event_id"]: r for r in gateway.requests() for e in r.events}
    assert set(by_id) == {before, child_id, after}
    assert by_id[child_id].peer != by_id[before].peer  # never on the parent's connection
    assert by_id[after].peer == by_id[before].peer  # whose connection the child left alone
    assert client.stats.sent == 2
