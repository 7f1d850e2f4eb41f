from pathlib import Path

import pytest

from storage.migrate import Migration, discover


def test_the_shipped_migrations_are_numbered_in_order() -> None:
    found = discover()
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].version == 1


def test_statements_are_split_and_scoped_to_the_database() -> None:
    m = Migration(
        1,
        "x",
        "-- a comment; with a semicolon\nCREATE TABLE {db}.a (x UInt8) "
        "ENGINE = Memory;\n\nCREATE TABLE {db}.b (y UInt8) ENGINE = Memory;\n",
    )
    assert m.statements("pl") == [
        "CREATE TABLE pl.a (x UInt8) ENGINE = Memory",
        "CREATE TABLE pl.b (y UInt8) ENGINE = Memory",
    ]


def test_badly_named_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match=r"NNNN_name\.sql"):
        discover(tmp_path)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0001_b.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match="version"):
        discover(tmp_path)
