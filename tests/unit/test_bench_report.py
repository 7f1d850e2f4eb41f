import io
import struct
from pathlib import Path

import numpy as np
import pytest

from pulseline.bench_report import per_second, plot, progress_line, show_progress


@pytest.mark.parametrize(
    ("elapsed", "duration", "acked", "errors", "expected"),
    [
        (0.0, 20.0, 0, 0, f"[{'.' * 30}]    0/20 s  0 events acked  0/s  0 errors"),
        (
            10.0,
            20.0,
            12_345,
            2,
            f"[{'#' * 15}{'.' * 15}]   10/20 s  12,345 events acked  1,234/s  2 errors",
        ),
        (25.0, 20.0, 50_000, 0, f"[{'#' * 30}]   25/20 s  50,000 events acked  2,000/s  0 errors"),
    ],
)
def test_the_progress_line(
    elapsed: float, duration: float, acked: int, errors: int, expected: str
) -> None:
    assert progress_line(elapsed, duration, acked, errors) == expected


def test_progress_is_one_line_per_call_off_a_terminal() -> None:
    out = io.StringIO()
    show_progress("a", out)
    show_progress("b", out)
    assert out.getvalue() == "a\nb\n"


def test_per_second_sums_acked_events_and_takes_the_p95_of_each_second() -> None:
    timeline = [(0.1, 10.0, 100), (0.9, 30.0, 100), (2.5, 50.0, 40)]
    seconds, events, p95 = per_second(timeline)
    assert seconds.tolist() == [0, 1, 2]
    assert events.tolist() == [200, 0, 40]
    assert p95[0] == pytest.approx(np.percentile([10.0, 30.0], 95))
    assert np.isnan(p95[1]) and p95[2] == 50.0


def test_the_plot_is_a_png_of_the_run(tmp_path: Path) -> None:
    timeline = [(i / 10, 5.0 + i % 7, 100) for i in range(200)]
    path = plot(timeline, [800.0, 950.0, 1200.0], tmp_path / "results" / "run.png", "a run")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (720, 720)  # 9 x 9 inches at 80 dpi
    assert len(data) > 10_000  # three drawn panels, not a blank canvas
