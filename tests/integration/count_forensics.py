"""Where a short counter lost its events: read back what the router sent and what the
count table wrote, per counter. Used by tests when the counters come out short, so the
failure names the stage instead of a bare total.

- ``routed``: distinct (source partition, offset) pairs in the by_project deltas: what
  the counter should hold;
- ``last``: the count table's latest changelog value;
- ``peak``: its largest changelog value;
- ``regressions``: changelog records lower than an earlier one for the same key: a
  writer that applied deltas to an older copy of the counter (a zombie owner).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import orjson

from pulseline.topics import PROJECT_COUNTS_BY_PROJECT, PROJECT_COUNTS_CHANGELOG
from tests.helpers import consume_all


@dataclass
class Counter:
    routed: set[tuple[str, int]] = field(default_factory=set)
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
        counters[doc["key"]].routed.update((doc["source"], o) for o in doc["offsets"])
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
            f"regressions {c.regressions[:3]}, writers {c.writers}"
        )
    return "\n".join(lines)
