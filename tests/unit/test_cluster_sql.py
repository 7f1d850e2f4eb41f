"""Cluster mode of the migrations: the SQL it generates, and that nothing changes when unset."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from storage.cluster import Cluster, ClusterSqlError
from storage.migrate import Migration, discover, migrate

CLUSTER = Cluster("pl_cluster")
ZK = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


def shipped(table: str) -> list[str]:
    for m in discover():
        for statement in m.statements("pl"):
            if f"pl.{table}\n" in statement or f"pl.{table} " in statement:
                return CLUSTER.statements(statement)
    raise AssertionError(f"no migration creates {table}")


def test_events_become_a_replicated_local_table_with_a_distributed_table_over_it() -> None:
    local, distributed = shipped("events")
    assert local.startswith("CREATE TABLE IF NOT EXISTS pl.events_local ON CLUSTER `pl_cluster`\n")
    assert f"ENGINE = ReplicatedReplacingMergeTree({ZK}, _inserted_at)" in local
    assert "ORDER BY (project_id, kind, timestamp, event_id)" in local
    assert "PARTITION BY toYYYYMM(timestamp)" in local
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS pl.events ON CLUSTER `pl_cluster` AS pl.events_local\n"
        "ENGINE = Distributed('pl_cluster', 'pl', 'events_local', cityHash64(event_id))"
    )


def test_counters_are_sharded_by_their_whole_key_so_snapshots_meet() -> None:
    local, distributed = shipped("project_counts")
    assert f"ENGINE = ReplicatedReplacingMergeTree({ZK}, count)" in local
    assert distributed.endswith(
        "Distributed('pl_cluster', 'pl', 'project_counts_local', "
        "cityHash64(project_id, kind, minute))"
    )


def test_the_deduplication_window_becomes_the_replicated_one() -> None:
    local, _ = shipped("events")
    assert "non_replicated_deduplication_window" not in local
    assert "SETTINGS replicated_deduplication_window = 10000" in local


def test_every_shipped_migration_has_a_cluster_translation() -> None:
    for m in discover():
        out = m.cluster_statements("pl", CLUSTER)
        schema = [s for s in out if not s.startswith("INSERT INTO ")]  # backfills run once
        assert schema and all("ON CLUSTER `pl_cluster`" in s for s in schema)


def test_an_unknown_table_is_sharded_by_a_hash_of_its_sort_key() -> None:
    _, distributed = CLUSTER.statements(
        "CREATE TABLE pl.sessions (a UInt8, b String) ENGINE = MergeTree ORDER BY (a, b)"
    )
    assert distributed.endswith("'sessions_local', cityHash64(a, b))")


def test_a_plain_merge_tree_gets_only_the_path_and_replica() -> None:
    local, _ = CLUSTER.statements("CREATE TABLE pl.t (a UInt8) ENGINE = MergeTree() ORDER BY a")
    assert f"ENGINE = ReplicatedMergeTree({ZK}) ORDER BY a" in local


def test_column_changes_reach_both_tables_and_other_alters_only_the_local_one() -> None:
    assert CLUSTER.statements("ALTER TABLE pl.events ADD COLUMN x UInt8") == [
        "ALTER TABLE pl.events_local ON CLUSTER `pl_cluster` ADD COLUMN x UInt8",
        "ALTER TABLE pl.events ON CLUSTER `pl_cluster` ADD COLUMN x UInt8",
    ]
    assert CLUSTER.statements("ALTER TABLE pl.events MODIFY TTL timestamp + INTERVAL 90 DAY") == [
        "ALTER TABLE pl.events_local ON CLUSTER `pl_cluster` MODIFY TTL timestamp + INTERVAL 90 DAY"
    ]


def test_a_materialized_view_joins_the_local_tables_on_every_node() -> None:
    (statement,) = CLUSTER.statements(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS pl.errors_mv TO pl.errors AS\n"
        "SELECT project_id, timestamp FROM pl.events WHERE kind = 'error'"
    )
    assert statement == (
        "CREATE MATERIALIZED VIEW IF NOT EXISTS pl.errors_mv ON CLUSTER `pl_cluster` "
        "TO pl.errors_local AS SELECT project_id, timestamp FROM pl.events_local "
        "WHERE kind = 'error'"
    )


def test_a_family_table_is_sharded_like_the_events_its_view_copies() -> None:
    _, distributed = shipped("pageviews")
    assert distributed.endswith("'pageviews_local', cityHash64(event_id))")


def test_a_dictionary_is_created_on_every_node() -> None:
    (statement,) = CLUSTER.statements(
        "CREATE DICTIONARY IF NOT EXISTS pl.d (k UInt64, v UInt16) PRIMARY KEY k "
        "SOURCE(CLICKHOUSE(QUERY 'SELECT 1')) LIFETIME(60) LAYOUT(HASHED())"
    )
    assert statement.startswith("CREATE DICTIONARY IF NOT EXISTS pl.d ON CLUSTER `pl_cluster`\n(")


def test_drop_removes_both_tables() -> None:
    assert CLUSTER.statements("DROP TABLE IF EXISTS pl.t") == [
        "DROP TABLE IF EXISTS pl.t ON CLUSTER `pl_cluster` SYNC",
        "DROP TABLE IF EXISTS pl.t_local ON CLUSTER `pl_cluster` SYNC",
    ]


def test_a_backfill_runs_once_through_the_distributed_tables() -> None:
    backfill = "INSERT INTO pl.rollup SELECT a, count() FROM pl.t GROUP BY a"
    assert CLUSTER.statements(backfill) == [backfill]


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE pl.t (a UInt8) ENGINE = Memory",
        "CREATE TABLE pl.t (a UInt8) ENGINE = ReplicatedMergeTree('/x', 'r') ORDER BY a",
        "CREATE TABLE pl.t (a UInt8) ENGINE = MergeTree ORDER BY tuple()",
        "CREATE MATERIALIZED VIEW pl.v TO pl.t AS SELECT 1",
        "INSERT INTO pl.t VALUES (1)",
    ],
)
def test_what_cannot_be_translated_is_refused_not_left_single_node(statement: str) -> None:
    with pytest.raises(ClusterSqlError):
        CLUSTER.statements(statement)


def test_a_cluster_name_is_an_identifier() -> None:
    with pytest.raises(ValueError, match="cluster name"):
        Cluster("a`; DROP")


class RecordingClient:
    """Records what migrate sends; answers the ledger query with no rows."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str) -> Any:
        return type("Result", (), {"result_rows": []})()

    def insert(self, *args: Any, **kwargs: Any) -> None:
        pass


class RecordingEngine:
    def __init__(self) -> None:
        self.client = RecordingClient()
        self.database = "pl"

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


def sent(cluster: str | None) -> list[str]:
    engine = RecordingEngine()
    migrate(engine, cluster=cluster)  # type: ignore[arg-type]
    return engine.client.commands


def test_unset_sends_the_files_statements_byte_for_byte() -> None:
    commands = sent(None)
    expected = [s for m in discover() for s in m.statements("pl")]
    assert commands[2:] == expected
    assert commands[0] == "CREATE DATABASE IF NOT EXISTS pl"
    assert "ENGINE = MergeTree ORDER BY version" in commands[1]


def test_a_cluster_name_switches_migrate_to_cluster_mode() -> None:
    commands = sent("pl_cluster")
    assert commands[:2] == CLUSTER.ledger("pl")
    assert commands[2:] == [s for m in discover() for s in m.cluster_statements("pl", CLUSTER)]
    assert "/clickhouse/tables/all/{database}/{table}" in commands[1]


def test_the_storage_setting_names_the_cluster() -> None:
    from pulseline.settings import StorageSettings

    settings = StorageSettings.from_env({"PULSELINE_CLICKHOUSE_CLUSTER": "pl_cluster"})
    assert sent(settings.clickhouse_cluster) == sent("pl_cluster")
    assert sent(StorageSettings.from_env({}).clickhouse_cluster) == sent(None)


def test_the_engine_parses_every_generated_statement() -> None:
    """ClickHouse's own parser (chdb, in a subprocess: one engine path per process)."""
    statements = CLUSTER.ledger("pl") + [
        s for m in discover() for s in m.cluster_statements("pl", CLUSTER)
    ]
    statements += Migration(
        9, "x", "ALTER TABLE {db}.events ADD COLUMN x UInt8"
    ).cluster_statements("pl", CLUSTER)
    script = (
        "import json, sys, chdb\n"
        "for s in json.load(sys.stdin):\n"
        "    chdb.query('EXPLAIN AST ' + s, 'CSV')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(statements),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_single_expression_sort_key_is_hashed_whole() -> None:
    _, distributed = CLUSTER.statements(
        "CREATE TABLE pl.t (a DateTime) ENGINE = MergeTree ORDER BY toDate(a)"
    )
    assert distributed.endswith("'t_local', cityHash64(toDate(a)))")


def test_a_replacing_tree_keeps_both_its_version_and_deleted_columns() -> None:
    local, distributed = shipped("control_entities")
    assert f"ENGINE = ReplicatedReplacingMergeTree({ZK}, version, is_deleted)" in local
    assert distributed.endswith("'control_entities_local', cityHash64(type, id))")


def test_a_plain_view_is_created_on_every_node_over_the_distributed_table() -> None:
    assert CLUSTER.statements("CREATE VIEW IF NOT EXISTS pl.v AS SELECT 1 FROM pl.t FINAL") == [
        "CREATE VIEW IF NOT EXISTS pl.v ON CLUSTER `pl_cluster` AS SELECT 1 FROM pl.t FINAL"
    ]
