"""``pulseline replay anomalies``: CSV in, one judged row out per input row."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pulseline.cli import main
from pulseline.commands.replay import BadInput, parse_params, read_series

STEADY = [1000, 1010, 990, 1005, 995, 1000, 1020, 980, 1000, 1000]


def series(tmp_path: Path, values: Sequence[float], header: bool = True) -> Path:
    lines = ["timestamp,value"] if header else []
    lines += [f"2026-03-01T12:{i:02d}:00Z,{v}" for i, v in enumerate(values)]
    path = tmp_path / "series.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def replayed(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, str]]:
    assert main(["replay", "anomalies", *argv]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_every_row_is_judged_and_only_the_slow_run_is_an_anomaly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = replayed(capsys, "--input", str(series(tmp_path, [*STEADY, 1030, 5000])))
    assert list(rows[0]) == ["timestamp", "value", "score", "is_anomaly", "explanation"]
    assert [r["value"] for r in rows] == [str(v) for v in [*STEADY, 1030, 5000]]
    assert [r["is_anomaly"] for r in rows] == ["false"] * 11 + ["true"]
    assert rows[0]["timestamp"] == "2026-03-01T12:00:00Z"
    assert rows[-1]["explanation"].startswith("took 5.0 s, ")
    assert float(rows[-1]["score"]) > 3
    assert rows[0]["score"] == rows[0]["explanation"] == ""


def test_a_param_override_changes_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(series(tmp_path, [*STEADY, 1030, 5000]))
    strict = replayed(capsys, "--input", path, "--param", "z_score=2", "--param", "sigma_factor=2")
    lenient = replayed(capsys, "--input", path, "--param", "min_samples=11")
    assert [r["is_anomaly"] for r in strict][-2:] == ["true", "true"]
    assert [r["is_anomaly"] for r in lenient][-2:] == ["false", "true"]


def test_the_output_file_and_several_rules(tmp_path: Path) -> None:
    path = series(tmp_path, [1000] * 12 + [100], header=False)
    out = tmp_path / "out.csv"
    argv = ["--input", str(path), "--output", str(out), "--rule", "duration"]
    assert main(["replay", "anomalies", *argv, "--rule", "output_size"]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 13
    assert rows[-1]["explanation"] == "output 100 B, 90% below the mean 1.0 kB of the last 7 runs"


@pytest.mark.parametrize(
    ("param", "named"),
    [("z_scor=2", "z_scor"), ("min_samples=ten", "min_samples"), ("z_score", "z_score")],
)
def test_a_bad_param_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], param: str, named: str
) -> None:
    path = str(series(tmp_path, STEADY))
    assert main(["replay", "anomalies", "--input", path, "--param", param]) == 2
    assert named in capsys.readouterr().err


def test_an_unreadable_row_exits_1_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2026-03-01T12:00:00Z,1\nnot-a-time,2\n", encoding="utf-8")
    assert main(["replay", "anomalies", "--input", str(path)]) == 1
    assert "line 3" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text", ["1772366400,5", "2026-03-01T12:00:00,5", "2026-03-01T14:00:00+02:00,5"]
)
def test_timestamps_may_be_unix_or_iso_and_naive_ones_are_utc(text: str) -> None:
    [(_, moment, value)] = read_series(io.StringIO(text + "\n"))
    assert (moment, value) == (datetime(2026, 3, 1, 12, tzinfo=UTC), 5.0)


def test_a_value_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(BadInput, match="line 1"):
        list(read_series(io.StringIO("2026-03-01T12:00:00Z,fast\n")))


def test_params_are_name_value_pairs() -> None:
    assert parse_params(["z_score=2.5", " min_samples = 20 "]) == {
        "z_score": "2.5",
        "min_samples": "20",
    }
