"""The per-family tables and per-project retention, on the real engine (chdb).

Rows go into ``events`` as the sink sends them (column inserts with a deduplication
token); the migration's views must copy each into its family table once, typed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pulseline.settings import StorageSettings
from storage.bench_synthetic import events_sql
from storage.client import Engine
from storage.migrate import migrate
from storage.rows import EVENTS

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
FAMILY_OF = {
    "error": "errors",
    "transaction": "transactions",
    "pageview": "pageviews",
    "event": "pageviews",
    "web_vital": "web_vitals",
    "check_in": "check_ins",
    "metric": "metrics",
}

SAMPLES: dict[str, dict[str, Any]] = {
    "error": {"level": "error", "exception": [{"type": "A", "value": "x"}, {"type": "B"}]},
    "transaction": {"name": "GET /a", "status": "internal_error", "duration_ms": 12.5},
    "pageview": {"url": "https://s.test/p/1?q=1", "referrer": "https://g.test/"},
    "event": {"name": "signup"},
    "web_vital": {"name": "LCP", "value": 1830.5, "url": "https://s.test/home"},
    "check_in": {"monitor": "nightly", "status": "fail", "exit_code": 3, "output_size": 10},
    "metric": {"name": "pg.conn", "value": 17, "tags": {"db": "main"}},
}


@pytest.fixture
def engine(storage_env: dict[str, str]) -> Iterator[Engine]:
    engine = Engine.open(StorageSettings.from_env(storage_env))
    migrate(engine)
    yield engine
    engine.close()


def row(project: int, kind: str, attributes: dict[str, Any], when: datetime = NOW) -> list[Any]:
    return [
        project, kind, when, uuid.uuid4(), when, "v-1", "s-1", "1.0", "prod", "", "",
        orjson.dumps(attributes).decode(), f"ingest.{kind}", 0, 0,
    ]  # fmt: skip


def insert(engine: Engine, rows: list[list[Any]], token: str) -> None:
    columns = [list(c) for c in zip(*rows, strict=True)]
    engine.client.insert(
        f"{engine.database}.events",
        columns,
        column_names=list(EVENTS.columns),
        column_oriented=True,
        settings={"insert_deduplication_token": token},
    )


def rows_of(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql``, with ``{db}`` standing for the test's database."""
    return list(engine.client.query(sql.replace("{db}", engine.database)).result_rows)


def scalar(engine: Engine, sql: str) -> Any:
    return rows_of(engine, sql)[0][0]


def test_every_event_lands_in_exactly_one_family_table(engine: Engine) -> None:
    engine.client.command(events_sql(engine.database, 0, 20_000, 20_000, NOW, 3))
    per_kind = dict(rows_of(engine, "SELECT kind, count() FROM {db}.events GROUP BY kind"))
    assert set(per_kind) == set(FAMILY_OF) and sum(per_kind.values()) == 20_000
    expected: dict[str, int] = {}
    for kind, n in per_kind.items():
        expected[FAMILY_OF[kind]] = expected.get(FAMILY_OF[kind], 0) + n
    for table, n in expected.items():
        assert scalar(engine, f"SELECT count() FROM {{db}}.{table}") == n, table


def test_a_retried_batch_adds_nothing_to_any_family_table(engine: Engine) -> None:
    batch = [row(1, kind, attrs) for kind, attrs in SAMPLES.items()]
    for _ in range(3):
        insert(engine, batch, "events:retry-1")
    assert scalar(engine, "SELECT count() FROM {db}.events") == len(batch)
    for table in set(FAMILY_OF.values()):
        n = sum(1 for kind in SAMPLES if FAMILY_OF[kind] == table)
        assert scalar(engine, f"SELECT count() FROM {{db}}.{table}") == n, table


@pytest.mark.parametrize(
    ("attributes", "route", "failed"),
    [
        ({"name": "GET /a", "status": "internal_error", "duration_ms": 1}, "GET /a", True),
        ({"route": "/r", "name": "n", "http_status": 503, "duration_ms": 1}, "/r", True),
        ({"name": "GET /b", "status": 502, "duration_ms": 1}, "GET /b", True),
        (
            {"name": "GET /c", "http_status": 404, "status": "not_found", "duration_ms": 1},
            "GET /c",
            False,
        ),
        ({"name": "GET /d", "status": "ok", "duration_ms": 1}, "GET /d", False),
    ],
)
def test_a_transaction_knows_its_route_and_whether_the_server_failed(
    engine: Engine, attributes: dict[str, Any], route: str, failed: bool
) -> None:
    insert(engine, [row(1, "transaction", attributes)], f"tx-{uuid.uuid4()}")
    got = engine.client.query(f"SELECT route, failed FROM {engine.database}.transactions")
    assert got.result_rows == [(route, failed)]


def test_typed_columns_hold_what_the_dashboards_read(engine: Engine) -> None:
    insert(engine, [row(1, kind, attrs) for kind, attrs in SAMPLES.items()], "typed")
    q = engine.client.query
    db = engine.database
    assert q(f"SELECT exception_type, level FROM {db}.errors").result_rows == [("B", "error")]
    assert q(
        f"SELECT kind, page, referrer, name FROM {db}.pageviews ORDER BY kind"
    ).result_rows == [
        ("event", "", "", "signup"),
        ("pageview", "/p/1", "https://g.test/", ""),
    ]
    assert q(f"SELECT page, name, value FROM {db}.web_vitals").result_rows == [
        ("/home", "LCP", 1830.5)
    ]
    assert q(f"SELECT monitor, status, exit_code, output_size FROM {db}.check_ins").result_rows == [
        ("nightly", "fail", 3, 10)
    ]
    assert q(f"SELECT name, value, tags FROM {db}.metrics").result_rows == [
        ("pg.conn", 17.0, {"db": "main"})
    ]


def project(engine: Engine, project_id: int, tier: str, retention: int | None) -> None:
    data = {"id": project_id, "name": f"p{project_id}", "tier": tier, "retention_days": retention}
    engine.client.insert(
        f"{engine.database}.control_entities",
        [["project", str(project_id), project_id, f"p{project_id}", f"p{project_id}",
          orjson.dumps(data).decode(), 1, 0]],
        column_names=["type", "id", "project_id", "name", "slug", "data", "version", "is_deleted"],
    )  # fmt: skip


def test_each_row_keeps_its_projects_retention_and_expires_by_it(engine: Engine) -> None:
    project(engine, 1, "pro", None)  # the tier's 90 days
    project(engine, 2, "free", 14)  # its own 14 days
    engine.client.command(f"SYSTEM RELOAD DICTIONARY {engine.database}.project_retention")
    old = NOW - timedelta(days=20)
    insert(
        engine,
        [
            row(1, "pageview", SAMPLES["pageview"], old),
            row(2, "pageview", SAMPLES["pageview"], old),
            row(2, "pageview", SAMPLES["pageview"]),
            row(3, "pageview", SAMPLES["pageview"], old),  # unknown project: 400 days
        ],
        "retention",
    )
    # Project 2's 20-day-old row is past its 14 days: ClickHouse drops it when it writes
    # the part, and a merge keeps the rest. Its fresh row and the others stay.
    for table in ("events", "pageviews"):
        engine.client.command(f"OPTIMIZE TABLE {engine.database}.{table} FINAL")
        kept = rows_of(
            engine,
            f"SELECT project_id, retention_days FROM {{db}}.{table} ORDER BY project_id, timestamp",
        )
        assert kept == [(1, 90), (2, 14), (3, 400)], table


def test_derived_rows_expire_by_their_projects_retention_too(engine: Engine) -> None:
    project(engine, 2, "free", 14)
    engine.client.command(f"SYSTEM RELOAD DICTIONARY {engine.database}.project_retention")
    columns = ["project_id", "fingerprint", "timestamp", "event_id", "rule"]
    fresh, old = NOW - timedelta(days=1), NOW - timedelta(days=20)
    engine.client.insert(
        f"{engine.database}.error_groups",
        [[2, "fp", fresh, uuid.uuid4(), "stack"], [2, "fp", old, uuid.uuid4(), "stack"],
         [3, "fp", old, uuid.uuid4(), "stack"]],
        column_names=columns,
    )  # fmt: skip
    engine.client.command(f"OPTIMIZE TABLE {engine.database}.error_groups FINAL")
    got = engine.client.query(
        f"SELECT project_id, retention_days FROM {engine.database}.error_groups ORDER BY project_id"
    )
    assert got.result_rows == [(2, 14), (3, 400)]
    star = engine.client.query(f"SELECT * FROM {engine.database}.error_groups LIMIT 1")
    assert list(star.column_names) == columns  # the read API's rows are unchanged
