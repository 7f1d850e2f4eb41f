"""Monitor slugs derived from a job's command (pure)."""

from __future__ import annotations

import hashlib
import re

import pytest

from pulseline.producers.wrap_slug import derive_slug, is_monitor_id, is_ping_slug

MONITOR_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def _hash(command: str) -> str:
    return hashlib.sha256(command.strip().encode()).hexdigest()[:8]


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/opt/bin/backup.sh --full", "backup-sh"),
        ("backup.sh", "backup-sh"),
        ("  /usr/bin/php  /var/www/artisan schedule:run ", "php"),
        ("PGPASSWORD=x LANG=C pg_dump -Fc db > /tmp/db.dump", "pg-dump"),
        ('"/opt/My Tools/Run_Nightly.PY" --x', "my"),
        ("'/opt/run.sh' a", "run-sh"),
        ("./bin/", "bin"),
        ("___", "job"),
        ("FOO=1", "job"),
        ("", "job"),
        ("Ünïcode-tool", "n-code-tool"),
        ("a" * 80, "a" * 40),
        ("x" * 39 + "-y", "x" * 39),
    ],
)
def test_slug_is_name_and_hash(command: str, name: str) -> None:
    slug = derive_slug(command)
    assert slug == f"{name}-{_hash(command)}"
    assert MONITOR_SLUG.fullmatch(slug)


def test_slug_is_deterministic_and_tells_commands_apart() -> None:
    assert derive_slug("backup.sh --full") == derive_slug("  backup.sh --full\t")
    assert derive_slug("backup.sh --full") != derive_slug("backup.sh --incremental")
    assert derive_slug("backup.sh --full") == "backup-sh-" + _hash("backup.sh --full")


@pytest.mark.parametrize(
    ("value", "monitor_id", "ping_slug"),
    [
        ("5f9e2c1a-0b6d-4c1e-9a8b-0123456789ab", True, True),
        ("5F9E2C1A-0B6D-4C1E-9A8B-0123456789AB", False, True),
        ("nightly", False, True),
        ("Nightly_Job-2", False, True),
        ("night ly", False, False),
        ("a/b", False, False),
        ("", False, False),
    ],
)
def test_monitor_names(value: str, monitor_id: bool, ping_slug: bool) -> None:
    assert is_monitor_id(value) is monitor_id
    assert is_ping_slug(value) is ping_slug
