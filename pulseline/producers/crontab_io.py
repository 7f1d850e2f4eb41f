"""Read and write the user's crontab through the ``crontab`` program, and keep backups.

The crontab is read with ``crontab -l`` and written with ``crontab -`` (stdin), as raw
bytes: text that is not UTF-8 is carried through unchanged (``surrogateescape``). The
program is ``$PULSELINE_CRONTAB_BIN`` or ``--crontab-bin``, else ``crontab`` on PATH.
Backups are mode 0600 (a crontab may hold secrets), in a 0700 directory.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

CRONTAB_BIN_VAR = "PULSELINE_CRONTAB_BIN"
TIMEOUT_S = 30.0


class CrontabError(Exception):
    """``crontab`` failed; the message carries what it said."""


def default_backup_dir() -> Path:
    return Path.home() / ".pulseline" / "crontab-backups"


def _run(
    binary: str, args: list[str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [binary, *args], input=stdin, capture_output=True, timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CrontabError(f"could not run {binary} {' '.join(args)}: {exc}") from exc


def read(binary: str) -> str:
    """The crontab's text; empty when the user has none."""
    done = _run(binary, ["-l"])
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        if "no crontab" in said.lower():
            return ""
        raise CrontabError(f"{binary} -l failed ({done.returncode}): {said}")
    return done.stdout.decode("utf-8", "surrogateescape")


def write(binary: str, text: str) -> None:
    done = _run(binary, ["-"], text.encode("utf-8", "surrogateescape"))
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        raise CrontabError(f"{binary} - failed ({done.returncode}): {said}")


def backup(text: str, directory: Path, now: datetime | None = None) -> Path:
    """Write ``text`` to a new timestamped file in ``directory``; its path."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    for n in range(1000):
        path = directory / (f"crontab-{stamp}.txt" if n == 0 else f"crontab-{stamp}-{n}.txt")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8", "surrogateescape"))
        return path
    raise CrontabError(f"no free backup name in {directory}")
