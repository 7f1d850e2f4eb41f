"""Where a short counter lost its events: read back what the router sent and what the
count table wrote, per counter. Used by tests when the counters come out short, so the
failure names the stage instead of a bare total.

- ``routed``: distinct (source partition, offset) pairs in the by_project deltas: what
  the counter should hold;
- ``last``: the count table's latest changelog value;
- ``peak``: its largest changelog value;
- ``regressions``: changelog records lower than an earlier one for the same key: a
  writer that applied deltas to an older copy of the counter (a zombie owner);
- ``simulated``: what the replay guard applies reading the deltas in log order. Below
  ``routed``, the router sent a source's offsets out of order; equal while ``last`` is
  short, the counter agent did not apply records it should have;
- ``jumps``: changelog records whose marks moved past more routed offsets than their
  count went up by: where (changelog offset, writer, source, marks before..after, routed
  offsets passed, count added) the counter skipped deltas.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from pulseline.topics import PROJECT_COUNTS_BY_PROJECT, PROJECT_COUNTS_CHANGELOG
from tests.helpers import consume_all


@dataclass
class Counter:
    routed: set[tuple[str, int]] = field(default_factory=set)
    marks: dict[str, int] = field(default_factory=dict)
    simulated: int = 0
    applied: dict[str, int] = field(default_factory=dict)
    n: int = 0
    jumps: list[str] = field(default_factory=list)
    last: int = 0
    peak: int = 0
    regressions: list[tuple[int, int, int, str]] = field(default_factory=list)
    writers: list[str] = field(default_factory=list)


async def count_forensics(bootstrap: str, prefix: str) -> str:
    counters: defaultdict[str, Counter] = defaultdict(Counter)
    for record in await consume_all(
        bootstrap, PROJECT_COUNTS_BY_PROJECT.physical(prefix), expect=10**9, timeout_s=5
    ):
        doc = orjson.loads(record.value)
        c = counters[doc["key"]]
        c.routed.update((doc["source"], o) for o in doc["offsets"])
        last = c.marks.get(doc["source"], -1)
        for o in doc["offsets"]:
            if o > last:
                c.simulated, last = c.simulated + 1, o
        c.marks[doc["source"]] = last
    for record in sorted(
        await consume_all(
            bootstrap, PROJECT_COUNTS_CHANGELOG.physical(prefix), expect=10**9, timeout_s=5
        ),
        key=lambda r: (r.partition, r.offset),
    ):
        if record.value is None:
            continue
        key, entry = orjson.loads(record.key), orjson.loads(record.value)
        c = counters[key]
        n = int(entry["n"])
        _jumps(c, record.offset, n, entry)
        if n < c.peak:
            c.regressions.append((record.offset, n, c.peak, str(entry.get("by"))))
        if not c.writers or c.writers[-1] != entry.get("by"):
            c.writers.append(str(entry.get("by")))
        c.last, c.peak = n, max(c.peak, n)
    short = {k: c for k, c in counters.items() if c.last != len(c.routed)}
    lines = [
        f"{len(counters)} counters, routed {sum(len(c.routed) for c in counters.values())}, "
        f"held {sum(c.last for c in counters.values())}, "
        f"{sum(len(c.regressions) for c in counters.values())} changelog regressions"
    ]
    for key, c in sorted(short.items())[:8]:
        lines.append(
            f"  {key}: routed {len(c.routed)}, last {c.last}, peak {c.peak}, "
            f"regressions {c.regressions[:3]}, writers {c.writers}, simulated {c.simulated}"
        )
        lines.append(f"    jumps: {c.jumps[:6]}")
    return "\n".join(lines)


def _jumps(c: Counter, offset: int, n: int, entry: dict[str, Any]) -> None:
    marks: dict[str, int] = entry.get("marks", {})
    passed = 0
    moved = []
    for source, mark in marks.items():
        before = c.applied.get(source, -1)
        if mark > before:
            passed += sum(1 for s, o in c.routed if s == source and before < o <= mark)
            moved.append(f"{source} {before}..{mark}")
    if passed > n - c.n:
        c.jumps.append(
            f"@{offset} by {entry.get('by')}: {', '.join(moved)} passed {passed}, +{n - c.n}"
        )
    c.applied.update(marks)
    c.n = n
