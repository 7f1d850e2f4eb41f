import asyncio
import time

import pytest

from pulseline.bench import FAMILIES, Pacer, mixed_batch
from pulseline.bench_rates import counter_total, rate

EXPOSITION = """\
# HELP pulseline_sink_rows_total Rows inserted
# TYPE pulseline_sink_rows_total counter
pulseline_sink_rows_total{table="events"} 1200.0
pulseline_sink_rows_total{table="stats_snapshots"} 30.0
pulseline_sink_rows_total_created{table="events"} 1.7e9
pulseline_processor_events_total{agent="route"} 5000.0
pulseline_processor_events_total{agent="count_by_project"} 80.0
"""


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        ("pulseline_sink_rows_total", {"table": "events"}, 1200.0),
        ("pulseline_sink_rows_total", None, 1230.0),
        ("pulseline_processor_events_total", {"agent": "route"}, 5000.0),
        ("pulseline_processor_events_total", {"agent": "missing"}, 0.0),
        ("pulseline_nothing_total", None, 0.0),
    ],
)
def test_counter_total_sums_the_matching_samples(
    name: str, labels: dict[str, str] | None, expected: float
) -> None:
    assert counter_total(EXPOSITION, name, labels) == expected


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([], {"mean_per_s": 0.0, "peak_per_s": 0.0, "counted": 0.0}),
        ([(0.0, 5.0), (1.0, 5.0)], {"mean_per_s": 0.0, "peak_per_s": 0.0, "counted": 0.0}),
        # idle, then 100 and 300 in two seconds, then idle: mean over the moving span only
        (
            [(0.0, 0.0), (1.0, 0.0), (2.0, 100.0), (3.0, 400.0), (4.0, 400.0)],
            {"mean_per_s": 200.0, "peak_per_s": 300.0, "counted": 400.0},
        ),
        # an uneven gap counts per second of the gap
        ([(0.0, 0.0), (0.5, 100.0)], {"mean_per_s": 200.0, "peak_per_s": 200.0, "counted": 100.0}),
    ],
)
def test_rate(samples: list[tuple[float, float]], expected: dict[str, float]) -> None:
    assert rate(samples) == expected


def test_a_mixed_batch_rotates_every_family_and_carries_the_run() -> None:
    batch = mixed_batch([f"id-{i}" for i in range(14)], "bench-x")
    assert [e["kind"] for e in batch[:7]] == [f["kind"] for f in FAMILIES]
    assert len({f["kind"] for f in FAMILIES}) == 7
    assert [e["event_id"] for e in batch] == [f"id-{i}" for i in range(14)]
    assert {e["environment"] for e in batch} == {"bench-x"}


def test_the_pacer_holds_the_rate_over_all_takers() -> None:
    async def run() -> float:
        pacer = Pacer(rate=2000.0)
        started = time.monotonic()
        await asyncio.gather(*(pacer.take(100) for _ in range(6)))  # 600 events
        return time.monotonic() - started

    assert 0.2 <= asyncio.run(run()) < 2.0  # the 6th slot starts 0.25 s in


def test_no_rate_means_no_wait() -> None:
    async def run() -> float:
        started = time.monotonic()
        await asyncio.gather(*(Pacer(0).take(10**6) for _ in range(3)))
        return time.monotonic() - started

    assert asyncio.run(run()) < 0.1
