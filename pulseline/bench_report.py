"""What a bench run shows while it runs (a progress bar) and leaves behind (a PNG plot).

Both read the per-request timeline: (seconds since the load began, latency in ms, events
acknowledged). Pure apart from the terminal and the file written.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

Request = tuple[float, float, int]  # started (s since the load began), latency ms, acked
BAR = 30


def progress_line(elapsed_s: float, duration_s: float, acked: int, errors: int) -> str:
    """``[#######.......]  7/20 s  12,400 events acked  1,771/s  0 errors``"""
    done = min(max(elapsed_s / duration_s, 0.0), 1.0) if duration_s > 0 else 1.0
    filled = round(done * BAR)
    rate = acked / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"[{'#' * filled}{'.' * (BAR - filled)}] {elapsed_s:4.0f}/{duration_s:.0f} s  "
        f"{acked:,} events acked  {rate:,.0f}/s  {errors:,} errors"
    )


def show_progress(line: str, out: TextIO = sys.stderr) -> None:
    """Redraw in place on a terminal; one line per call elsewhere (CI logs)."""
    if out.isatty():
        out.write(f"\r{line}")
    else:
        out.write(f"{line}\n")
    out.flush()


def per_second(timeline: Sequence[Request]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seconds, acknowledged events per second, and latency p95 (ms) per second."""
    if not timeline:
        empty = np.zeros(0)
        return empty, empty, empty
    started = np.array([t for t, _, _ in timeline])
    latency = np.array([ms for _, ms, _ in timeline])
    acked = np.array([n for _, _, n in timeline])
    second = np.floor(started).astype(int)
    seconds = np.arange(second.max() + 1)
    events = np.bincount(second, weights=acked, minlength=len(seconds))
    p95 = np.array(
        [
            np.percentile(latency[second == s], 95) if (second == s).any() else np.nan
            for s in seconds
        ]
    )
    return seconds, events, p95


def plot(
    timeline: Sequence[Request],
    freshness_ms: Sequence[float],
    path: Path,
    title: str,
    under_load_ms: Sequence[float] = (),
) -> Path:
    """Throughput and latency over the run, and the freshness samples (idle, and under
    load if given, on the same bins in another colour), as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds, events, p95 = per_second(timeline)
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 9), constrained_layout=True)
    fig.suptitle(title)
    top.plot(seconds, events, color="tab:blue")
    top.set_ylabel("events acked / s")
    top.set_xlabel("seconds into the load")
    middle.plot(seconds, p95, color="tab:red")
    middle.set_ylabel("request latency p95 (ms)")
    middle.set_xlabel("seconds into the load")
    if freshness_ms and not under_load_ms:
        bottom.hist(list(freshness_ms), bins=min(20, len(freshness_ms)), color="tab:green")
    elif under_load_ms:
        both = [*freshness_ms, *under_load_ms]
        edges = np.histogram_bin_edges(both, bins=min(30, len(both)))
        if freshness_ms:
            bottom.hist(list(freshness_ms), bins=edges, color="tab:green", alpha=0.6, label="idle")
        bottom.hist(
            list(under_load_ms), bins=edges, color="tab:orange", alpha=0.6, label="under load"
        )
        bottom.legend()
    bottom.set_xlabel("freshness: 202 to visible in the read API (ms)")
    bottom.set_ylabel("samples")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
