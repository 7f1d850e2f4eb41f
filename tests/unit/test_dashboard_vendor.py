"""The pinned front-end files match the checksums recorded in vendor.json."""

from __future__ import annotations

import shutil
from pathlib import Path

from storage.dashboard.assets import VENDOR, load_assets, verify


def test_every_pinned_vendor_file_matches_its_recorded_sha256() -> None:
    assert verify() == []


def test_a_changed_vendor_file_is_named(tmp_path: Path) -> None:
    copy = tmp_path / "vendor"
    shutil.copytree(VENDOR, copy)
    (copy / "htmx-2.0.11.min.js").write_text("tampered")
    (copy / "uplot-1.6.32.min.css").unlink()
    problems = verify(copy)
    assert len(problems) == 2
    assert problems[0].startswith("htmx-2.0.11.min.js: sha256")
    assert problems[1] == "uplot-1.6.32.min.css: missing"


def test_assets_are_an_allowlist_of_static_files_with_their_types() -> None:
    assets = load_assets()
    assert assets["vendor/htmx-2.0.11.min.js"].media_type == "text/javascript"
    assert assets["dashboard.css"].media_type == "text/css"
    assert not any(name.endswith((".json", ".txt")) for name in assets)
