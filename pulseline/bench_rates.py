"""Processor and sink rates during a bench run, from the services' own Prometheus counters.

A sampler reads a counter once a second; ``rate`` turns the samples into the mean rate
over the span where the counter moved, and the busiest second. Parsing and arithmetic are
pure; only ``Sampler`` touches the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import httpx

Sample = tuple[float, float]  # monotonic seconds, counter value


def counter_total(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of ``name``'s samples in a Prometheus exposition whose labels include
    ``labels``; 0 when there are none."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, raw = head.partition("{")
        if metric != name:
            continue
        found = dict(pair.split("=", 1) for pair in raw.rstrip("}").split(",") if "=" in pair)
        if all(found.get(k) == f'"{v}"' for k, v in (labels or {}).items()):
            total += float(value)
    return total


def rate(samples: list[Sample]) -> dict[str, float]:
    """Mean per second from the first to the last change of the counter, and the largest
    increase between two consecutive samples per second of their gap."""
    moved = [i for i in range(1, len(samples)) if samples[i][1] > samples[i - 1][1]]
    if not moved:
        return {"mean_per_s": 0.0, "peak_per_s": 0.0, "counted": 0.0}
    first, last = moved[0] - 1, moved[-1]
    (t0, v0), (t1, v1) = samples[first], samples[last]
    peak = max(
        (samples[i][1] - samples[i - 1][1]) / (samples[i][0] - samples[i - 1][0]) for i in moved
    )
    return {
        "mean_per_s": round((v1 - v0) / (t1 - t0), 1),
        "peak_per_s": round(peak, 1),
        "counted": v1 - v0,
    }


class Sampler(threading.Thread):
    """Reads ``url``'s metrics every ``every_s`` in the background until ``stop()``;
    unreachable reads are skipped (a service restarting is not a zero)."""

    def __init__(self, url: str, read: Callable[[str], float], every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.url, self.read, self.every_s = url, read, every_s
        self.samples: list[Sample] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stopping.is_set():
                try:
                    r = client.get(self.url)
                    if r.status_code == 200:
                        self.samples.append((time.monotonic(), self.read(r.text)))
                except httpx.HTTPError:
                    pass
                self._stopping.wait(self.every_s)

    def stop(self) -> dict[str, float]:
        self._stopping.set()
        self.join(10)
        return rate(self.samples)
