from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import start_worker, stop_worker


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One processors worker for the test, stopped (SIGTERM, then SIGKILL) after it."""
    proc = start_worker(env, tmp_path / "worker.log")
    yield proc
    stop_worker(proc)
