"""The dashboard's static files: served from memory, gzipped once, vendor files checked.

``vendor.json`` records, per pinned npm file, its package, version and sha256; ``verify``
names every file whose bytes no longer match. ``Assets`` loads an allowlist (the files in
``static/`` and ``static/vendor/``) at start-up, so a request can never name another path.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson

STATIC = Path(__file__).parent / "static"
VENDOR = STATIC / "vendor"
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def verify(vendor_dir: Path = VENDOR) -> list[str]:
    """Problems with the pinned files: missing, or a sha256 other than the recorded one."""
    manifest = orjson.loads((vendor_dir / "vendor.json").read_bytes())
    problems = []
    for name, entry in manifest.items():
        path = vendor_dir / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry["sha256"]:
            problems.append(f"{name}: sha256 {digest} != recorded {entry['sha256']}")
    return problems


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def _load(path: Path) -> Asset:
    body = path.read_bytes()
    return Asset(
        body,
        gzip.compress(body, 9, mtime=0),
        TYPES[path.suffix],
        '"' + hashlib.sha256(body).hexdigest()[:16] + '"',
    )


def load_assets(static_dir: Path = STATIC) -> dict[str, Asset]:
    """``{"app.js": Asset, "vendor/htmx-2.0.11.min.js": Asset, ...}``."""
    found = {}
    for path in sorted(static_dir.rglob("*")):
        if path.is_file() and path.suffix in TYPES:
            found[path.relative_to(static_dir).as_posix()] = _load(path)
    return found


def gzipped_size(assets: dict[str, Asset], names: list[str]) -> int:
    """Bytes on the wire, gzipped, of the named files together."""
    return sum(len(assets[n].gzipped) for n in names)
