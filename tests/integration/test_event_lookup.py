"""Finding one event by id (migration 0008's bloom index and ``queries.event_by_id``), on chdb."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest

from storage import queries
from storage.bench_synthetic import events_sql
from storage.client import Engine
from storage.migrate import discover
from tests.integration.test_family_tables import NOW, engine, insert, row, rows_of, scalar

pytestmark = pytest.mark.integration
__all__ = ["engine"]  # the fixture


def lookup(engine: Engine, project: int, event_id: uuid.UUID) -> list[tuple[Any, ...]]:
    sql, params = queries.event_by_id(engine.database, project, event_id)
    return list(engine.client.query(sql, parameters=params).result_rows)


def skip_granules(engine: Engine, project: int, event_id: uuid.UUID) -> tuple[int, int]:
    """(kept, of) granules after the ``event_id_bloom`` index, from EXPLAIN."""
    sql, params = queries.event_by_id(engine.database, project, event_id)
    plan = "\n".join(
        r[0]
        for r in engine.client.query(f"EXPLAIN indexes = 1 {sql}", parameters=params).result_rows
    )
    after = plan[plan.index("Name: event_id_bloom") :]
    m = re.search(r"Granules: (\d+)/(\d+)", after)
    assert m, plan
    return int(m[1]), int(m[2])


def test_the_lookup_reads_only_granules_that_may_hold_the_id(engine: Engine) -> None:
    engine.client.command(events_sql(engine.database, 0, 200_000, 200_000, NOW, 3))
    engine.client.command(f"OPTIMIZE TABLE {engine.database}.events FINAL")
    wanted = rows_of(
        engine, "SELECT event_id FROM {db}.events WHERE project_id = 1 ORDER BY _offset LIMIT 1"
    )[0][0]
    found = lookup(engine, 1, wanted)
    assert len(found) == 1 and found[0][0] == wanted
    kept, of = skip_granules(engine, 1, wanted)
    assert of >= 15 and kept <= 2  # 0.1% false positives: nearly always the one granule
    assert lookup(engine, 2, wanted) == []  # another project's id is not found


def test_rows_stored_before_the_migration_get_the_index(engine: Engine) -> None:
    db = engine.database
    engine.client.command(f"ALTER TABLE {db}.events DROP INDEX event_id_bloom")
    engine.client.command(events_sql(db, 0, 100_000, 100_000, NOW, 3))
    (migration,) = [m for m in discover() if m.name == "event_lookup"]
    for statement in migration.statements(db):
        engine.client.command(statement, settings={"mutations_sync": 1})
    wanted = rows_of(engine, "SELECT event_id FROM {db}.events WHERE project_id = 1 LIMIT 1")[0][0]
    kept, of = skip_granules(engine, 1, wanted)
    assert of >= 5 and kept <= 2


def test_a_retried_event_is_one_row_the_one_the_list_shows(engine: Engine) -> None:
    first = row(1, "error", {"message": "boom"})
    again = list(first)
    again[4] = first[4] + timedelta(seconds=5)  # received again, by a client retry
    insert(engine, [first], "t1")
    insert(engine, [again], "t2")
    assert scalar(engine, "SELECT count() FROM {db}.events") == 2  # both copies are stored
    found = lookup(engine, 1, first[3])
    listed_sql, params = queries.EventQuery(
        1, first[2] - timedelta(minutes=1), first[2] + timedelta(minutes=1), 10
    ).sql(engine.database)
    listed = list(engine.client.query(listed_sql, parameters=params).result_rows)
    assert len(found) == 1 and found == listed
    received = dict(zip(queries.EVENT_COLUMNS.split(", "), found[0], strict=True))["received_at"]
    assert received.replace(tzinfo=None) == again[4].replace(tzinfo=None)  # FINAL's choice
