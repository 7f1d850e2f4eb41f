"""Apply each ingest event once downstream of the router. Pure: no Faust.

The router names every event it passes on by its source partition and offset. A worker
that dies before committing routes the same events again from the last commit, possibly
cut into different batches, so a fold can meet an event twice. One router owns a source
partition at a time, Kafka keeps each partition's order and every agent takes its records
in offset order (``in_order``), so the events of one source partition reach a fold key in
offset order: the highest offset applied per key and source is all a fold must remember.
The memory is exact, not a time window, and costs one integer per key and source partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def source_id(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def fresh(
    marks: Mapping[str, int], source: str, offsets: Sequence[int]
) -> tuple[list[int], dict[str, int]]:
    """Which of ``offsets`` are new for ``source``, and the marks after them.

    Faust can hand an agent the same record twice in a row, so one batch can name an
    offset twice: only an offset above every one applied before it is new."""
    last = marks.get(source, -1)
    keep = []
    for i, offset in enumerate(offsets):
        if offset > last:
            keep.append(i)
            last = offset
    if not keep:
        return [], dict(marks)
    return keep, {**marks, source: last}
