"""Monitor slugs derived from a job's command, and what counts as a monitor name. Pure.

``derive_slug(command)`` is ``<name>-<hash>``:

- ``name`` is the last path part of the command's first word that is not a ``VAR=value``
  assignment, lower-cased, every run of characters other than ``a-z0-9`` turned into one
  ``-``, trimmed of ``-`` and cut to 40 characters (``job`` when nothing is left);
- ``hash`` is the first 8 hex digits of the SHA-256 of the command with the whitespace
  around it stripped (UTF-8).

So ``/opt/bin/backup.sh --full`` gives ``backup-sh-`` and 8 hex digits: readable, the
same on every machine, different for ``backup.sh --incremental``, and within a monitor
slug's ``^[a-z0-9][a-z0-9-]{0,62}$``.
"""

from __future__ import annotations

import hashlib
import re

NAME_CHARS = 40
HASH_CHARS = 8
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# What the gateway's ping routes take: a Healthchecks slug, or a monitor id.
_PING_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _name(command: str) -> str:
    words = [w for w in command.split() if not _ASSIGNMENT.match(w)]
    if not words:
        return "job"
    base = words[0].strip("'\"").rstrip("/").rsplit("/", 1)[-1]
    name = _NOT_SLUG.sub("-", base.lower()).strip("-")[:NAME_CHARS].strip("-")
    return name or "job"


def derive_slug(command: str) -> str:
    digest = hashlib.sha256(command.strip().encode("utf-8", "surrogateescape")).hexdigest()
    return f"{_name(command)}-{digest[:HASH_CHARS]}"


def is_monitor_id(value: str) -> bool:
    return _UUID.fullmatch(value) is not None


def is_ping_slug(value: str) -> bool:
    return _PING_SLUG.fullmatch(value) is not None
