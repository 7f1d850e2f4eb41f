"""What the sink holds between polls, and the deterministic insert token. Pure.

Commit order, written down once: rows are inserted, dead letters are acked by Kafka,
and only then are the offsets after ``last`` committed. A retry inserts the identical
rows with the identical token, so ClickHouse drops the second copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.rows import Table


@dataclass
class OffsetRange:
    first: int
    last: int


def _see(
    ranges: dict[tuple[str, int], OffsetRange], topic: str, partition: int, first: int, last: int
) -> None:
    current = ranges.get((topic, partition))
    if current is None:
        ranges[(topic, partition)] = OffsetRange(first, last)
    else:
        current.last = max(current.last, last)


@dataclass
class TableBatch:
    table: Table
    data: list[Sequence[Any]] = field(default_factory=list)  # rows, in column order
    ranges: dict[tuple[str, int], OffsetRange] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.data)

    @property
    def columns(self) -> list[tuple[Any, ...]]:
        """The rows pivoted into columns, as a columnar insert takes them."""
        return list(zip(*self.data, strict=True)) or [() for _ in self.table.columns]

    def add(self, row: Sequence[Any]) -> None:
        self.data.append(row)

    def token(self) -> str:
        spans = ",".join(f"{t}:{p}:{r.first}-{r.last}" for (t, p), r in sorted(self.ranges.items()))
        return f"{self.table.name}:" + hashlib.sha256(spans.encode()).hexdigest()[:32]


@dataclass
class Batch:
    """Rows per table plus the offset range seen per partition (dead letters included)."""

    tables: dict[str, TableBatch] = field(default_factory=dict)
    offsets: dict[tuple[str, int], OffsetRange] = field(default_factory=dict)
    dead: list[tuple[str, int, int, bytes | None, bytes | None, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    def __len__(self) -> int:
        return self.rows + len(self.dead)

    def add_row(
        self, table: Table, topic: str, partition: int, offset: int, row: Sequence[Any]
    ) -> None:
        self.add_rows(table, topic, partition, [row], [offset])

    def add_rows(
        self,
        table: Table,
        topic: str,
        partition: int,
        rows: Sequence[Sequence[Any]],
        offsets: Sequence[int],
    ) -> None:
        """Rows read from one partition, in offset order."""
        if not rows:
            return
        batch = self.tables.get(table.name)
        if batch is None:
            batch = self.tables[table.name] = TableBatch(table)
        batch.data.extend(rows)
        _see(batch.ranges, topic, partition, offsets[0], max(offsets))
        _see(self.offsets, topic, partition, offsets[0], max(offsets))

    def add_dead(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
    ) -> None:
        self.dead.append((topic, partition, offset, key, value, reason))
        _see(self.offsets, topic, partition, offset, offset)

    def commit_offsets(self) -> dict[tuple[str, int], int]:
        return {tp: r.last + 1 for tp, r in self.offsets.items()}
