from datetime import UTC, datetime
from uuid import uuid4

import pytest

from storage.queries import BadCursor, Cursor, EventQuery


def test_a_cursor_round_trips() -> None:
    cursor = Cursor(datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC), uuid4())
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("text", ["", "garbage", "WyJ4Il0", "bm90IGpzb24"])
def test_a_forged_cursor_is_refused(text: str) -> None:
    with pytest.raises(BadCursor):
        Cursor.decode(text)


def test_every_event_query_is_scoped_to_its_project_by_a_bound_parameter() -> None:
    q = EventQuery(
        42, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), 10, kind="error"
    )
    sql, params = q.sql("db")
    assert "project_id = {project:UInt32}" in sql and params["project"] == 42
    assert "kind = {kind:String}" in sql and params["kind"] == "error"
    assert "42" not in sql
