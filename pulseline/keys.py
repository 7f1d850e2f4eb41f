"""API keys: ``pl_<scope>_<32 base62 chars><6-char checksum>``; only hashes are stored.

The checksum (CRC-32 of the body, base62) lets a service refuse a mistyped key without
a lookup, the way GitHub's tokens do. Ingest keys are public (browsers, Sentry DSNs) and
can only write; read and admin keys are secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_LEN = 32
_CHECK_LEN = 6
_FORMAT = re.compile(rf"^pl_(ingest|read|admin)_([0-9A-Za-z]{{{_BODY_LEN + _CHECK_LEN}}})$")
PREFIX_CHARS = 14


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiKey:
    """What a key grants: a project (None: every project, admin keys only) and a scope."""

    project_id: int | None
    scope: Scope


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK_LEN)


def new_key(scope: Scope) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_BODY_LEN))
    return f"pl_{scope.value}_{body}{_checksum(body)}"


def well_formed(raw: str) -> bool:
    """Prefix, length and checksum are right; says nothing about whether the key exists."""
    match = _FORMAT.match(raw)
    if match is None:
        return False
    tail = match[2]
    return _checksum(tail[:_BODY_LEN]) == tail[_BODY_LEN:]


def display_prefix(raw: str) -> str:
    """The part of a key that may be shown again after creation."""
    return raw[: raw.index("_", 3) + 1 + 4] if raw.count("_") >= 2 else raw[:PREFIX_CHARS]


class KeyRing(Protocol):
    def lookup(self, raw: str) -> ApiKey | None: ...


class StaticKeyRing:
    """An in-memory key ring, for tests of the HTTP shells."""

    def __init__(self) -> None:
        self._by_hash: dict[str, ApiKey] = {}

    def add(self, raw: str, key: ApiKey) -> None:
        self._by_hash[key_hash(raw)] = key

    def lookup(self, raw: str) -> ApiKey | None:
        if not well_formed(raw):
            return None
        return self._by_hash.get(key_hash(raw))


DEMO_PROJECT_ID = 1


@dataclass(frozen=True)
class DemoKeys:
    """The demo project's raw keys, kept in ``<data_dir>/demo-keys.json`` (mode 0600) so
    ``make run`` can print them each time; the control plane holds only their hashes."""

    project_id: int
    ingest: str
    read: str
    admin: str

    def keyring(self) -> StaticKeyRing:
        ring = StaticKeyRing()
        ring.add(self.ingest, ApiKey(self.project_id, Scope.INGEST))
        ring.add(self.read, ApiKey(self.project_id, Scope.READ))
        ring.add(self.admin, ApiKey(None, Scope.ADMIN))
        return ring


def demo_keys(data_dir: Path) -> DemoKeys:
    """Load the demo project's keys, creating them on first use."""
    path = data_dir / "demo-keys.json"
    if path.exists():
        raw = json.loads(path.read_text())
        if all(well_formed(raw.get(k, "")) for k in ("ingest", "read", "admin")):
            return DemoKeys(int(raw["project_id"]), raw["ingest"], raw["read"], raw["admin"])
        path.unlink()  # written by an older version; make a complete set
    keys = DemoKeys(
        DEMO_PROJECT_ID, new_key(Scope.INGEST), new_key(Scope.READ), new_key(Scope.ADMIN)
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {
                "project_id": keys.project_id,
                "ingest": keys.ingest,
                "read": keys.read,
                "admin": keys.admin,
            },
            fh,
        )
    return keys
