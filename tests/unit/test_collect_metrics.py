"""Rows of a poll to metric samples and to events the gateway accepts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from pulseline.collectors.events import batches, metric_event, metric_events
from pulseline.collectors.pg_metrics import (
    OWN_MARKER,
    ConnectionRow,
    DatabaseRow,
    PostgresMetrics,
    ReplicaRow,
    Sample,
    Snapshot,
    StatementRow,
    TableRow,
    connection_counts,
    merge_statements,
    shorten,
    top_statements,
)
from pulseline.collectors.redact import Redactor
from pulseline.schemas import EventIn

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def db(name: str = "shop", n: float = 0, reset: str | None = "r1", **over: Any) -> DatabaseRow:
    values = {
        "xact_commit": 1000 + 10 * n,
        "xact_rollback": 5 + n,
        "blks_read": 100 + n,
        "blks_hit": 900 + 9 * n,
        "deadlocks": 0,
        "temp_bytes": 4096 * n,
        "temp_files": n,
        "size_bytes": 8_000_000,
    }
    values.update(over)
    return DatabaseRow(database=name, stats_reset=reset, **values)


def stmt(queryid: int, total: float, calls: float = 10, **over: Any) -> StatementRow:
    values: dict[str, Any] = {
        "database": "shop",
        "queryid": queryid,
        "query": f"SELECT {queryid}",
        "calls": calls,
        "total_time_ms": total,
        "rows": calls * 2,
    }
    values.update(over)
    return StatementRow(**values)


def by_name(samples: Sequence[Sample], name: str) -> list[Sample]:
    return [s for s in samples if s.name == name]


def one(samples: Sequence[Sample], name: str, **tags: str) -> float:
    found = [s for s in by_name(samples, name) if all(s.tags.get(k) == v for k, v in tags.items())]
    assert len(found) == 1, (name, tags, found)
    return found[0].value


# Top N


def test_statements_are_merged_across_roles_and_the_collectors_own_left_out() -> None:
    rows = [
        stmt(1, 100.0, calls=4, since="s1"),
        stmt(1, 50.0, calls=1, since="s2"),
        stmt(1, 7.0, database="other"),
        stmt(2, 1.0, query=f"SELECT /* {OWN_MARKER} */ 1"),
    ]
    merged = merge_statements(rows)
    assert [(r.database, r.queryid, r.calls, r.total_time_ms, r.since) for r in merged] == [
        ("shop", 1, 5, 150.0, "s2"),
        ("other", 1, 10, 7.0, None),
    ]


@pytest.mark.parametrize(
    ("n", "ids"),
    [(0, []), (1, [3]), (2, [3, 1]), (3, [3, 1, 2]), (4, [3, 1, 2, 4]), (10, [3, 1, 2, 4])],
)
def test_top_n_is_by_total_time_and_ties_go_to_the_lower_id(n: int, ids: list[int]) -> None:
    rows = [stmt(4, 1.0), stmt(2, 5.0), stmt(3, 9.0), stmt(1, 5.0)]
    assert [r.queryid for r in top_statements(rows, n)] == ids


def test_connections_count_every_usual_state_of_every_database() -> None:
    rows = [ConnectionRow("shop", "active", 2), ConnectionRow("shop", None, 1)]
    counts = connection_counts(rows, ["shop", "crm"])
    assert counts[("shop", "active")] == 2
    assert counts[("shop", "unknown")] == 1
    assert counts[("crm", "idle")] == 0
    assert len(counts) == 9


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("SELECT  *\n  FROM t", "SELECT * FROM t"),
        ("x" * 200, "x" * 200),
        ("x" * 201, "x" * 199 + "…"),
    ],
)
def test_text_is_flattened_and_cut_to_a_tag(text: str, out: str) -> None:
    assert shorten(text) == out


# Snapshots to samples


def snapshot(at: float, n: float = 0, **over: Any) -> Snapshot:
    values: dict[str, Any] = {
        "at": at,
        "database": "shop",
        "instance": "db:5432",
        "databases": [db("shop", n), db("crm", n)],
        "connections": [ConnectionRow("shop", "active", 3), ConnectionRow("shop", "idle", 2)],
        "max_connections": 100,
        "statements": [stmt(1, 100.0 + 10 * n, calls=10 + n), stmt(2, 50.0 + n)],
        "tables": [TableRow("public", "orders", 344064.0)],
    }
    values.update(over)
    return Snapshot(**values)


def test_the_first_poll_sends_gauges_only() -> None:
    samples = PostgresMetrics().samples(snapshot(0.0))
    names = {s.name for s in samples}
    assert names == {
        "postgres.database.size_bytes",
        "postgres.connections",
        "postgres.connections.max",
        "postgres.statement.mean_time_ms",
        "postgres.table.size_bytes",
    }
    assert one(samples, "postgres.connections", database="shop", state="active") == 3
    assert one(samples, "postgres.connections", database="crm", state="active") == 0
    assert one(samples, "postgres.table.size_bytes", table="orders") == 344064.0
    assert one(samples, "postgres.statement.mean_time_ms", queryid="1") == 10.0
    assert one(samples, "postgres.database.size_bytes", database="crm") == 8_000_000


def test_the_second_poll_adds_the_rates() -> None:
    metrics = PostgresMetrics()
    metrics.samples(snapshot(0.0))
    samples = metrics.samples(snapshot(10.0, n=5))
    assert one(samples, "postgres.xact_commit_rate", database="shop") == 5.0
    assert one(samples, "postgres.xact_rollback_rate", database="crm") == 0.5
    assert one(samples, "postgres.deadlocks_rate", database="shop") == 0.0
    assert one(samples, "postgres.temp_bytes_rate", database="shop") == 2048.0
    assert one(samples, "postgres.temp_files_rate", database="shop") == 0.5
    assert one(samples, "postgres.cache_hit_ratio", database="shop") == 0.9
    assert one(samples, "postgres.statement.calls_rate", queryid="1") == 0.5
    assert one(samples, "postgres.statement.rows_rate", queryid="1") == 1.0
    assert one(samples, "postgres.statement.total_time_ms_rate", queryid="1") == 5.0
    assert one(samples, "postgres.statement.calls_rate", queryid="2") == 0.0
    assert one(samples, "postgres.statement.mean_time_ms", queryid="1") == 150.0 / 15


def test_no_block_read_or_hit_between_polls_gives_no_cache_hit_ratio() -> None:
    metrics = PostgresMetrics()
    metrics.samples(snapshot(0.0))
    samples = metrics.samples(snapshot(10.0, databases=[db("shop", 0)]))
    assert by_name(samples, "postgres.cache_hit_ratio") == []
    assert one(samples, "postgres.xact_commit_rate", database="shop") == 0.0


def test_a_stats_reset_gives_no_rate_that_poll() -> None:
    metrics = PostgresMetrics()
    metrics.samples(snapshot(0.0, n=100))
    samples = metrics.samples(snapshot(10.0, n=0, databases=[db("shop", 0, reset="r2")]))
    assert by_name(samples, "postgres.xact_commit_rate") == []
    assert by_name(samples, "postgres.cache_hit_ratio") == []
    # The statements' counters went down too (pg_stat_statements_reset): no rate either.
    assert by_name(samples, "postgres.statement.calls_rate") == []
    later = metrics.samples(snapshot(20.0, n=1, databases=[db("shop", 1, reset="r2")]))
    assert one(later, "postgres.xact_commit_rate", database="shop") == 1.0
    assert all(s.value >= 0 for s in later if s.name.endswith("_rate"))


def test_a_statement_that_climbs_into_the_top_n_has_its_rate_at_once() -> None:
    metrics = PostgresMetrics(top_n=1)
    metrics.samples(snapshot(0.0, statements=[stmt(1, 100.0), stmt(2, 50.0, calls=10)]))
    samples = metrics.samples(snapshot(10.0, statements=[stmt(1, 100.0), stmt(2, 500.0, calls=30)]))
    assert {s.tags["queryid"] for s in samples if s.name.startswith("postgres.statement.")} == {"2"}
    assert one(samples, "postgres.statement.calls_rate", queryid="2") == 2.0


def test_no_pg_stat_statements_means_no_statement_metrics_and_the_rest_as_usual() -> None:
    metrics = PostgresMetrics()
    metrics.samples(snapshot(0.0, statements=None))
    samples = metrics.samples(snapshot(10.0, n=1, statements=None))
    assert not [s for s in samples if s.name.startswith("postgres.statement.")]
    assert one(samples, "postgres.xact_commit_rate", database="shop") == 1.0


def test_replication_lag_on_a_primary_and_on_a_standby() -> None:
    replicas = [
        ReplicaRow("walreceiver", "10.0.0.2", "streaming", 16384.0, 0.25),
        ReplicaRow("", None, "startup", None, None),
    ]
    samples = PostgresMetrics().samples(snapshot(0.0, replicas=replicas))
    assert one(samples, "postgres.replication.lag_bytes", application_name="walreceiver") == 16384
    assert one(samples, "postgres.replication.replay_lag_s", client_addr="10.0.0.2") == 0.25
    assert len(by_name(samples, "postgres.replication.lag_bytes")) == 1
    standby = PostgresMetrics().samples(snapshot(0.0, standby_lag_s=-0.01))
    assert one(standby, "postgres.replication.standby_lag_s") == 0.0
    assert (
        by_name(PostgresMetrics().samples(snapshot(0.0)), "postgres.replication.standby_lag_s")
        == []
    )


def test_no_password_reaches_a_tag() -> None:
    redact = Redactor.for_dsn("postgresql://app:hunter2@db/shop")
    statements = [
        stmt(1, 10.0, query="ALTER ROLE app PASSWORD 'n3w-secret'"),
        stmt(2, 9.0, query="SELECT 'hunter2' AS leaked"),
    ]
    samples = PostgresMetrics(redact=redact).samples(snapshot(0.0, statements=statements))
    text = repr(samples)
    assert "hunter2" not in text and "n3w-secret" not in text
    assert one(samples, "postgres.statement.mean_time_ms", queryid="1") == 1.0


# Events


def test_a_sample_becomes_a_metric_event_the_gateway_accepts() -> None:
    ids = iter([uuid.UUID(int=7)])
    sample = Sample("postgres.xact_commit_rate", 5, "1/s", {"database": "shop"})
    event = metric_event(
        sample, AT, {"instance": "db:5432", "database": "ignored"}, lambda: next(ids)
    )
    assert event == {
        "kind": "metric",
        "event_id": "00000000-0000-0000-0000-000000000007",
        "timestamp": "2026-03-01T12:00:00+00:00",
        "attributes": {
            "name": "postgres.xact_commit_rate",
            "value": 5.0,
            "type": "gauge",
            "unit": "1/s",
            "tags": {"instance": "db:5432", "database": "shop"},
        },
    }
    checked = EventIn.model_validate(event)
    assert checked.attributes == event["attributes"]


def test_every_sample_of_a_busy_poll_is_a_valid_event() -> None:
    metrics = PostgresMetrics()
    metrics.samples(snapshot(0.0))
    long_query = "SELECT " + ", ".join(f"col_{i}" for i in range(200)) + " FROM t"
    statements = [stmt(1, 200.0, calls=20, query=long_query), stmt(2, 51.0)]
    samples = metrics.samples(snapshot(10.0, n=1, statements=statements))
    events = metric_events(samples, AT, {"instance": "db:5432", "team": "x" * 300})
    assert len(events) == len(samples) > 20
    for event in events:
        EventIn.model_validate(event)
    assert len({e["event_id"] for e in events}) == len(events)


def test_a_value_that_is_not_finite_is_not_sent() -> None:
    samples = [Sample("a", float("nan"), "x"), Sample("b", float("inf"), "x"), Sample("c", 1, "x")]
    assert [e["attributes"]["name"] for e in metric_events(samples, AT)] == ["c"]


@pytest.mark.parametrize(
    ("n", "size", "sizes"), [(0, 3, []), (5, 2, [2, 2, 1]), (6, 3, [3, 3]), (2, 0, [1, 1])]
)
def test_batches(n: int, size: int, sizes: list[int]) -> None:
    assert [len(b) for b in batches(list(range(n)), size)] == sizes
