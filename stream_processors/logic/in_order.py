"""Hand an agent each partition's records once in offset order, or say which to fetch. Pure.

Faust (0.15) can hand an agent a record from further ahead right after a rebalance: one
prefetched before the partitions were revoked, while the records in between were dropped
from the agent's queue and its fetcher had already read past them. Taken as is, that loses
the records in between and breaks the order the folds rely on (``replay_guard``). Seeking
Faust's consumer back does not help: its fetch loop does not always honour the seek.

Each partition therefore has a lane that knows the next offset it expects. A record at or
before it is taken (before it: a redelivery, which the folds skip). A record past it means
"fetch the offsets in between first, then take this one". After a rebalance a lane starts
from the offset the group committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    TAKE = "take"
    FILL = "fill"  # fetch ``missing`` and hand those records on before this one


@dataclass(frozen=True)
class Lane:
    expect: int | None = None


@dataclass(frozen=True)
class Step:
    verdict: Verdict
    lane: Lane
    missing: range = range(0)


def step(lane: Lane, offset: int, start: int | None) -> Step:
    """What to do with the record at ``offset``; ``start`` is where the lane begins if new."""
    expect = lane.expect if lane.expect is not None else start
    after = Lane(offset + 1)
    if expect is None or offset <= expect:
        return Step(Verdict.TAKE, after)
    return Step(Verdict.FILL, after, range(expect, offset))


def unfound(missing: range, found: list[int]) -> list[range]:
    """The runs of ``missing`` offsets the fetch did not return (retention, compaction)."""
    have = set(found)
    runs: list[range] = []
    begin: int | None = None
    for offset in missing:
        if offset in have:
            if begin is not None:
                runs.append(range(begin, offset))
                begin = None
        elif begin is None:
            begin = offset
    if begin is not None:
        runs.append(range(begin, missing.stop))
    return runs
