"""Rows read from PostgreSQL to metric samples: names, units, tags, rates, top N.

No I/O: ``postgres.py`` reads the rows into a ``Snapshot``; ``PostgresMetrics`` keeps the
previous poll's counters and turns each snapshot into ``Sample``s. The names are listed,
with their units and tags, in docs/POSTGRES_COLLECTOR.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pulseline.collectors.rates import RateTracker
from pulseline.collectors.redact import scrub_sql
from pulseline.families import MAX_SHORT

# Every query the collector runs carries this, so its own statements are not reported.
OWN_MARKER = "pulseline-collector"
# pg_stat_activity.state values; a database without a connection in a state reports 0.
STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    value: float
    unit: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DatabaseRow:
    """One row of ``pg_stat_database`` (cumulative counters) with the database's size."""

    database: str
    xact_commit: float
    xact_rollback: float
    blks_read: float
    blks_hit: float
    deadlocks: float
    temp_bytes: float
    temp_files: float
    stats_reset: str | None = None
    size_bytes: float | None = None


@dataclass(frozen=True, slots=True)
class StatementRow:
    """One row of ``pg_stat_statements``; ``since`` is ``stats_since`` (PostgreSQL 17+)."""

    database: str
    queryid: int
    query: str
    calls: float
    total_time_ms: float
    rows: float
    since: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    database: str
    state: str | None
    count: int


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    """A standby as its primary sees it in ``pg_stat_replication``."""

    application_name: str
    client_addr: str | None
    state: str | None
    lag_bytes: float | None
    replay_lag_s: float | None


@dataclass(frozen=True, slots=True)
class TableRow:
    schema: str
    table: str
    size_bytes: float


@dataclass(frozen=True)
class Snapshot:
    """What one poll read. ``statements`` is ``None`` when pg_stat_statements is unreadable;
    ``tables`` belong to ``database``, the one connected to."""

    at: float
    database: str
    instance: str = ""
    databases: list[DatabaseRow] = field(default_factory=list)
    connections: list[ConnectionRow] = field(default_factory=list)
    max_connections: int | None = None
    statements: list[StatementRow] | None = None
    replicas: list[ReplicaRow] = field(default_factory=list)
    standby_lag_s: float | None = None
    tables: list[TableRow] = field(default_factory=list)


# pg_stat_database column -> metric name and unit of its rate.
DATABASE_RATES = {
    "xact_commit": ("postgres.xact_commit_rate", "1/s"),
    "xact_rollback": ("postgres.xact_rollback_rate", "1/s"),
    "deadlocks": ("postgres.deadlocks_rate", "1/s"),
    "temp_bytes": ("postgres.temp_bytes_rate", "bytes/s"),
    "temp_files": ("postgres.temp_files_rate", "1/s"),
}
_DATABASE_COUNTERS = (*DATABASE_RATES, "blks_read", "blks_hit")
# pg_stat_statements counter -> metric name and unit of its rate.
STATEMENT_RATES = {
    "calls": ("postgres.statement.calls_rate", "1/s"),
    "rows": ("postgres.statement.rows_rate", "rows/s"),
    "total_time_ms": ("postgres.statement.total_time_ms_rate", "ms/s"),
}

DbKey = tuple[str, str, str | None]
StatementKey = tuple[str, int, str | None, str]


def shorten(text: str, limit: int = MAX_SHORT) -> str:
    """Whitespace collapsed, cut to ``limit`` characters (the last one an ellipsis)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + ELLIPSIS


def merge_statements(rows: Iterable[StatementRow]) -> list[StatementRow]:
    """One row per database and query id: pg_stat_statements splits a query by role and
    by top level; the collector's own queries are left out."""
    merged: dict[tuple[str, int], StatementRow] = {}
    for row in rows:
        if OWN_MARKER in row.query:
            continue
        key = (row.database, row.queryid)
        seen = merged.get(key)
        if seen is None:
            merged[key] = row
            continue
        merged[key] = StatementRow(
            row.database,
            row.queryid,
            seen.query,
            seen.calls + row.calls,
            seen.total_time_ms + row.total_time_ms,
            seen.rows + row.rows,
            max((s for s in (seen.since, row.since) if s is not None), default=None),
        )
    return list(merged.values())


def top_statements(rows: Iterable[StatementRow], n: int) -> list[StatementRow]:
    """The ``n`` with the most total execution time; ties go to the lower query id."""
    if n <= 0:
        return []
    return sorted(rows, key=lambda r: (-r.total_time_ms, r.database, r.queryid))[:n]


def connection_counts(
    rows: Iterable[ConnectionRow], databases: Iterable[str]
) -> dict[tuple[str, str], int]:
    """``(database, state) -> count``, with 0 for the usual states of every database."""
    counts = {(db, state): 0 for db in databases for state in STATES}
    for row in rows:
        key = (row.database, row.state or "unknown")
        counts[key] = counts.get(key, 0) + row.count
    return counts


class PostgresMetrics:
    """Turns snapshots into samples; remembers counters between polls for the rates.

    ``redact`` is applied to every text that comes from the server (query text above all),
    so a password can reach no tag.
    """

    def __init__(self, top_n: int = 20, redact: Callable[[str], str] = str) -> None:
        self.top_n = top_n
        self._redact = redact
        self._databases: RateTracker[DbKey] = RateTracker()
        self._statements: RateTracker[StatementKey] = RateTracker()

    def samples(self, snap: Snapshot) -> list[Sample]:
        out = self._database_samples(snap)
        out += self._connection_samples(snap)
        if snap.statements is not None:
            out += self._statement_samples(snap.statements, snap.at)
        out += self._replication_samples(snap)
        for table in snap.tables:
            tags = {"database": snap.database, "schema": table.schema, "table": table.table}
            out.append(Sample("postgres.table.size_bytes", table.size_bytes, "bytes", tags))
        return [self._redacted(s) for s in out]

    def _redacted(self, sample: Sample) -> Sample:
        tags = {k: shorten(self._redact(v)) for k, v in sample.tags.items()}
        return Sample(sample.name, sample.value, sample.unit, tags)

    def _database_samples(self, snap: Snapshot) -> list[Sample]:
        counters: dict[DbKey, float] = {
            (row.database, column, row.stats_reset): float(getattr(row, column))
            for row in snap.databases
            for column in _DATABASE_COUNTERS
        }
        rates = self._databases.update(counters, snap.at)
        out: list[Sample] = []
        for row in snap.databases:
            tags = {"database": row.database}
            found = [rates.get((row.database, c, row.stats_reset)) for c in _DATABASE_COUNTERS]
            # One counter that went down means the row was reset: none of its rates holds.
            if all(value is not None for value in found):
                by_column = dict(zip(_DATABASE_COUNTERS, found, strict=True))
                for column, (name, unit) in DATABASE_RATES.items():
                    out.append(Sample(name, by_column[column] or 0.0, unit, tags))
                hit, read = by_column["blks_hit"] or 0.0, by_column["blks_read"] or 0.0
                if hit + read > 0:
                    ratio = hit / (hit + read)
                    out.append(Sample("postgres.cache_hit_ratio", ratio, "ratio", tags))
            if row.size_bytes is not None:
                out.append(Sample("postgres.database.size_bytes", row.size_bytes, "bytes", tags))
        return out

    def _connection_samples(self, snap: Snapshot) -> list[Sample]:
        counts = connection_counts(snap.connections, (row.database for row in snap.databases))
        out = [
            Sample("postgres.connections", float(n), "connections", {"database": db, "state": st})
            for (db, st), n in sorted(counts.items())
        ]
        if snap.max_connections is not None:
            out.append(
                Sample("postgres.connections.max", float(snap.max_connections), "connections")
            )
        return out

    def _statement_samples(self, rows: list[StatementRow], at: float) -> list[Sample]:
        merged = merge_statements(rows)
        counters: dict[StatementKey, float] = {
            (row.database, row.queryid, row.since, column): float(getattr(row, column))
            for row in merged
            for column in STATEMENT_RATES
        }
        # Every statement is tracked, not only the top N: one that climbs into the top N
        # has its baseline already.
        rates = self._statements.update(counters, at)
        out: list[Sample] = []
        for row in top_statements(merged, self.top_n):
            tags = {
                "database": row.database,
                "queryid": str(row.queryid),
                "query": scrub_sql(row.query),
            }
            if row.calls > 0:
                mean = row.total_time_ms / row.calls
                out.append(Sample("postgres.statement.mean_time_ms", mean, "ms", tags))
            found = [rates.get((row.database, row.queryid, row.since, c)) for c in STATEMENT_RATES]
            if all(value is not None for value in found):
                for (name, unit), value in zip(STATEMENT_RATES.values(), found, strict=True):
                    out.append(Sample(name, value or 0.0, unit, tags))
        return out

    def _replication_samples(self, snap: Snapshot) -> list[Sample]:
        out: list[Sample] = []
        for replica in snap.replicas:
            tags = {
                "application_name": replica.application_name or "unknown",
                "client_addr": replica.client_addr or "local",
                "state": replica.state or "unknown",
            }
            if replica.lag_bytes is not None:
                lag = max(replica.lag_bytes, 0.0)
                out.append(Sample("postgres.replication.lag_bytes", lag, "bytes", tags))
            if replica.replay_lag_s is not None:
                out.append(
                    Sample("postgres.replication.replay_lag_s", replica.replay_lag_s, "s", tags)
                )
        if snap.standby_lag_s is not None:
            lag = max(snap.standby_lag_s, 0.0)
            out.append(Sample("postgres.replication.standby_lag_s", lag, "s"))
        return out
