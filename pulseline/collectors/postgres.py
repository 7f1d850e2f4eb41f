"""``pulseline collect postgres``: the shell around the pure parts.

``PostgresSource`` reads one ``Snapshot`` per poll over one psycopg connection (autocommit,
so a failed optional query does not poison the next); ``Collector`` maps it to metric
events, sends them and says what happened, every message passed through the redactor.
A part that cannot be read (pg_stat_statements missing, no right to a view) is said once
and skipped; only a lost connection fails a poll, and the next poll reconnects.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO, TypeVar

import psycopg

from pulseline.collectors import pg_queries as q
from pulseline.collectors.events import metric_events
from pulseline.collectors.pg_metrics import (
    ConnectionRow,
    DatabaseRow,
    PostgresMetrics,
    ReplicaRow,
    Snapshot,
    StatementRow,
    TableRow,
)
from pulseline.collectors.sender import SendReport, Unauthorized

T = TypeVar("T")
Row = tuple[Any, ...]
Connection = psycopg.Connection[Row]
STATEMENT_TIMEOUT_MS = 5000


class SourceError(Exception):
    """The server could not be read this poll; the message is already redacted."""


class Sink(Protocol):
    def send(self, events: Sequence[dict[str, Any]]) -> SendReport: ...

    def close(self) -> None: ...


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _database_row(r: Row) -> DatabaseRow:
    commit, rollback, read, hit, deadlocks, temp_bytes, temp_files = (float(v or 0) for v in r[1:8])
    return DatabaseRow(
        r[0], commit, rollback, read, hit, deadlocks, temp_bytes, temp_files, r[8], _float(r[9])
    )


class PostgresSource:
    def __init__(
        self,
        dsn: str,
        redact: Callable[[str], str],
        *,
        max_tables: int = 50,
        connect_timeout_s: int = 10,
        connect: Callable[..., Connection] = psycopg.connect,
    ) -> None:
        self._dsn = dsn
        self._redact = redact
        self.max_tables = max_tables
        self._connect_timeout_s = connect_timeout_s
        self._connect = connect
        self._conn: Connection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            conn = self._connect(
                self._dsn,
                autocommit=True,
                connect_timeout=self._connect_timeout_s,
                fallback_application_name="pulseline-collect",
            )
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            self._conn = conn
        return self._conn

    def read(self) -> tuple[Snapshot, list[str]]:
        """One snapshot and the notices of parts that could not be read."""
        try:
            return self._read()
        except psycopg.Error as exc:
            broken = self._conn is None or self._conn.broken or self._conn.closed
            self.close()
            what = "cannot connect to" if broken else "cannot read"
            raise SourceError(f"{what} PostgreSQL: {self._redact(str(exc).strip())}") from None

    def _read(self) -> tuple[Snapshot, list[str]]:
        conn = self._connection()
        at = time.monotonic()
        notices: list[str] = []
        database = conn.info.dbname
        databases = [_database_row(r) for r in conn.execute(q.DATABASES).fetchall()]
        connections = [
            ConnectionRow(r[0], r[1], int(r[2])) for r in conn.execute(q.CONNECTIONS).fetchall()
        ]
        max_row = conn.execute(q.MAX_CONNECTIONS).fetchone()
        statements = self._statements(conn, database, notices)
        replicas, standby_lag = self._replication(conn, notices)
        tables = self._optional(
            conn,
            "table sizes",
            notices,
            lambda: [
                TableRow(r[0], r[1], float(r[2]))
                for r in conn.execute(q.TABLES, (self.max_tables,)).fetchall()
                if r[2] is not None
            ],
        )
        snap = Snapshot(
            at=at,
            database=database,
            instance=f"{conn.info.host}:{conn.info.port}",
            databases=databases,
            connections=connections,
            max_connections=None if max_row is None else int(max_row[0]),
            statements=statements,
            replicas=replicas or [],
            standby_lag_s=standby_lag,
            tables=tables or [],
        )
        return snap, notices

    def _optional(
        self, conn: Connection, what: str, notices: list[str], read: Callable[[], T]
    ) -> T | None:
        try:
            return read()
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise
            notices.append(f"cannot read {what}, skipped: {self._redact(str(exc).strip())}")
            return None

    def _statements(
        self, conn: Connection, database: str, notices: list[str]
    ) -> list[StatementRow] | None:
        found = conn.execute(q.STATEMENTS_SCHEMA).fetchone()
        if found is None:
            notices.append(q.statements_problem(database))
            return None
        query = q.statements_query(found[0], conn.info.server_version)
        try:
            rows = conn.execute(query).fetchall()
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise
            detail = self._redact(str(exc).strip())
            notices.append(q.statements_problem(database, exc.sqlstate, detail))
            return None
        return [
            StatementRow(r[0], int(r[1]), r[2] or "", float(r[3]), float(r[4]), float(r[5]), r[6])
            for r in rows
        ]

    def _replication(
        self, conn: Connection, notices: list[str]
    ) -> tuple[list[ReplicaRow] | None, float | None]:
        def read() -> tuple[list[ReplicaRow], float | None]:
            row = conn.execute(q.IN_RECOVERY).fetchone()
            if row is not None and row[0]:
                lag = conn.execute(q.STANDBY_LAG).fetchone()
                return [], None if lag is None else _float(lag[0])
            replicas = [
                ReplicaRow(r[0] or "", r[1], r[2], _float(r[3]), _float(r[4]))
                for r in conn.execute(q.REPLICAS).fetchall()
            ]
            return replicas, None

        found = self._optional(conn, "replication", notices, read)
        return (None, None) if found is None else found


class Source(Protocol):
    def read(self) -> tuple[Snapshot, list[str]]: ...

    def close(self) -> None: ...


class Collector:
    """Polls, maps, sends and reports; ``run`` loops until Ctrl-C (or polls once)."""

    def __init__(
        self,
        source: Source,
        metrics: PostgresMetrics,
        sink: Sink,
        redact: Callable[[str], str],
        *,
        tags: Mapping[str, str] | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.source = source
        self.metrics = metrics
        self.sink = sink
        self._redact = redact
        self.tags = dict(tags or {})
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._wall_clock = wall_clock
        self._said: set[str] = set()
        self._last_failure: str | None = None

    def _say(self, message: str, stream: TextIO | None = None) -> None:
        stream = stream or self._err
        print(f"pulseline collect postgres: {self._redact(message)}", file=stream, flush=True)

    def _say_once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            self._say(message)

    def poll_once(self) -> bool:
        """One poll; ``False`` when the server could not be read or events were lost."""
        try:
            snap, notices = self.source.read()
        except SourceError as exc:
            # A server that stays down is reported when it goes down, not every poll.
            if str(exc) != self._last_failure:
                self._say(str(exc))
            self._last_failure = str(exc)
            return False
        if self._last_failure is not None:
            self._say("PostgreSQL answers again")
            self._last_failure = None
        for notice in notices:
            self._say_once(notice)
        samples = self.metrics.samples(snap)
        common = {"instance": snap.instance, **self.tags} if snap.instance else self.tags
        events = metric_events(samples, self._wall_clock(), common)
        report = self.sink.send(events)
        for problem in report.problems:
            self._say(problem)
        if report.rejected:
            first = report.rejected[0]
            self._say(f"the gateway rejected {len(report.rejected)} events, the first: {first}")
        stamp = self._wall_clock().astimezone().strftime("%H:%M:%S")
        print(
            f"{stamp} sent {report.accepted} of {len(events)} metrics", file=self._out, flush=True
        )
        return report.ok and not report.rejected

    def run(
        self,
        interval_s: float,
        once: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> int:
        """Exit code: 0 stopped by Ctrl-C (or ``once`` went well), 1 otherwise."""
        try:
            if once:
                return 0 if self.poll_once() else 1
            due = clock()
            while True:
                self.poll_once()
                # Ticks stay on a fixed grid; a poll slower than the interval skips ticks.
                due += interval_s
                now = clock()
                if due < now:
                    due = now + interval_s - (now - due) % interval_s
                sleep(due - now)
        except KeyboardInterrupt:
            self._say("stopped")
            return 0
        except Unauthorized as exc:
            self._say(f"the gateway refused the ingest key: {exc}")
            return 1
        finally:
            self.source.close()
            self.sink.close()
