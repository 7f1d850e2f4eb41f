"""What the sink holds between polls, and the deterministic insert token. Pure.

Commit order, written down once: rows are inserted, dead letters are acked by Kafka,
and only then are the offsets after ``last`` committed. A retry inserts the identical
rows with the identical token, so ClickHouse drops the second copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from storage.rows import Table


@dataclass
class OffsetRange:
    first: int
    last: int


@dataclass
class TableBatch:
    table: Table
    columns: list[list[Any]] = field(default_factory=list)
    ranges: dict[tuple[str, int], OffsetRange] = field(default_factory=dict)
    rows: int = 0

    def __post_init__(self) -> None:
        self.columns = [[] for _ in self.table.columns]

    def add(self, row: list[Any]) -> None:
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)
        self.rows += 1

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

    def _see(
        self, ranges: dict[tuple[str, int], OffsetRange], topic: str, partition: int, offset: int
    ) -> None:
        current = ranges.get((topic, partition))
        if current is None:
            ranges[(topic, partition)] = OffsetRange(offset, offset)
        else:
            current.last = max(current.last, offset)

    def add_row(
        self, table: Table, topic: str, partition: int, offset: int, row: list[Any]
    ) -> None:
        batch = self.tables.get(table.name)
        if batch is None:
            batch = self.tables[table.name] = TableBatch(table)
        batch.add(row)
        self._see(batch.ranges, topic, partition, offset)
        self._see(self.offsets, topic, partition, offset)

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
        self._see(self.offsets, topic, partition, offset)

    def commit_offsets(self) -> dict[tuple[str, int], int]:
        return {tp: r.last + 1 for tp, r in self.offsets.items()}
