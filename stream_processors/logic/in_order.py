"""Hand an agent each partition's records once in offset order, or say where to seek. Pure.

Faust (0.15) can hand an agent a record from further ahead right after a rebalance: one
prefetched before the partitions were revoked, while the records in between were dropped
from the agent's queue. Taken as is, that loses the records in between (nobody sees them
until the partition moves again) and breaks the order the folds rely on
(``replay_guard``). Each partition therefore has a lane that knows the next offset it
expects: a record at or before it is taken (before it: a redelivery, which the folds skip),
a record past it means "seek back to the expected offset and drop what arrives until it".

After a rebalance a lane starts from the offset the group committed (or the log start).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    TAKE = "take"
    SEEK = "seek"  # seek the partition back to ``Lane.expect``; drop this record
    DROP = "drop"  # a seek is under way; this record will come again


@dataclass(frozen=True)
class Lane:
    expect: int | None = None
    seeking: bool = False


def step(lane: Lane, offset: int, start: int | None) -> tuple[Verdict, Lane]:
    """What to do with the record at ``offset``; ``start`` is where the lane begins if new."""
    expect = lane.expect if lane.expect is not None else start
    if expect is None or offset <= expect:
        return Verdict.TAKE, Lane(offset + 1)
    if lane.seeking:
        return Verdict.DROP, lane
    return Verdict.SEEK, Lane(expect, seeking=True)
