"""API keys: ``pl_<scope>_<secret>``; services hold only SHA-256 hashes.

Until the control plane (compacted topic) lands, one demo project and its keys are
kept in ``<data_dir>/demo-keys.json`` (mode 0600), the way a local credentials file
is, so ``make run`` can print them and the README's curl lines work.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiKey:
    project_id: int
    scope: Scope


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_key(scope: Scope) -> str:
    return f"pl_{scope.value}_{secrets.token_urlsafe(24)}"


class KeyRing:
    """Resolves a raw key to its project and scope by hash; never keeps the raw key."""

    def __init__(self, entries: dict[str, ApiKey] | None = None) -> None:
        self._by_hash: dict[str, ApiKey] = dict(entries or {})

    def add(self, raw: str, key: ApiKey) -> None:
        self._by_hash[key_hash(raw)] = key

    def lookup(self, raw: str) -> ApiKey | None:
        return self._by_hash.get(key_hash(raw))


DEMO_PROJECT_ID = 1


@dataclass(frozen=True)
class DemoKeys:
    project_id: int
    ingest: str
    read: str

    def keyring(self) -> KeyRing:
        ring = KeyRing()
        ring.add(self.ingest, ApiKey(self.project_id, Scope.INGEST))
        ring.add(self.read, ApiKey(self.project_id, Scope.READ))
        return ring


def demo_keys(data_dir: Path) -> DemoKeys:
    """Load the demo project's keys, creating them on first use."""
    path = data_dir / "demo-keys.json"
    if path.exists():
        raw = json.loads(path.read_text())
        return DemoKeys(int(raw["project_id"]), raw["ingest"], raw["read"])
    keys = DemoKeys(DEMO_PROJECT_ID, new_key(Scope.INGEST), new_key(Scope.READ))
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"project_id": keys.project_id, "ingest": keys.ingest, "read": keys.read}, fh)
    return keys
