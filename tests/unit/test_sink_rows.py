from datetime import UTC, datetime
from uuid import UUID, uuid4

import orjson
import pytest

from storage.batch import Batch
from storage.rows import COUNTS, EVENTS, RowError, Source, decode

SRC = Source("ingest.error", 1, 42)


def event(**over: object) -> bytes:
    doc = {
        "event_id": str(uuid4()),
        "project_id": 1,
        "kind": "error",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "received_at": "2026-01-01T00:00:01Z",
        "attributes": {"a": 1},
    }
    doc.update(over)
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


def test_an_event_becomes_a_row_in_column_order() -> None:
    eid = uuid4()
    row = decode(EVENTS, event(event_id=str(eid), distinct_id="u1"), SRC)
    values = dict(zip(EVENTS.columns, row, strict=True))
    assert values["event_id"] == UUID(str(eid))
    assert values["timestamp"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert values["distinct_id"] == "u1" and values["session_id"] == ""
    assert values["attributes"] == '{"a":1}'
    assert (values["_topic"], values["_partition"], values["_offset"]) == ("ingest.error", 1, 42)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty"),
        (b"{nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (event(event_id="x"), "event_id"),
        (event(project_id=-1), "project_id"),
        (event(project_id=2**32), "project_id must be an integer from 0 to 4294967295"),
        (event(kind="bogus"), "kind"),
        (event(timestamp="soon"), "timestamp"),
        (event(attributes=[1]), "attributes"),
    ],
)
def test_records_that_can_never_be_rows_say_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(RowError, match=reason):
        decode(EVENTS, value, SRC)


def test_a_count_snapshot_becomes_a_row() -> None:
    raw = orjson.dumps(
        {"project_id": 2, "kind": "pageview", "minute": "2026-01-01T00:05:00+00:00", "count": 9}
    )
    assert decode(COUNTS, raw, SRC) == [2, "pageview", datetime(2026, 1, 1, 0, 5, tzinfo=UTC), 9]


def test_the_insert_token_depends_only_on_the_offset_ranges() -> None:
    def build(order: list[tuple[int, int]]) -> Batch:
        batch = Batch()
        for partition, offset in order:
            batch.add_row(EVENTS, "ingest.error", partition, offset, decode(EVENTS, event(), SRC))
        return batch

    a = build([(0, 5), (1, 7), (0, 6)])
    b = build([(1, 7), (0, 5), (0, 6)])
    c = build([(0, 5), (1, 8), (0, 6)])
    assert a.tables["events"].token() == b.tables["events"].token()
    assert a.tables["events"].token() != c.tables["events"].token()


def test_dead_letters_advance_the_committed_offsets_too() -> None:
    batch = Batch()
    batch.add_row(EVENTS, "ingest.error", 0, 10, decode(EVENTS, event(), SRC))
    batch.add_dead("ingest.error", 0, 11, None, b"x", "invalid row: not JSON")
    batch.add_dead("ingest.metric", 3, 0, None, b"x", "invalid row: not JSON")
    assert batch.commit_offsets() == {("ingest.error", 0): 12, ("ingest.metric", 3): 1}
    assert batch.rows == 1 and len(batch) == 3


def control(kind: str, data: dict[str, object]) -> bytes:
    return orjson.dumps(
        {
            "schema_version": 1,
            "type": kind,
            "id": str(data["id"]),
            "data": data,
            "updated_at": "2026-01-01T00:00:00Z",
        }
    )


def test_control_rows_leave_out_secrets() -> None:
    from storage.rows import CONTROL_ENTITIES

    channel = {
        "id": "c1",
        "project_id": 3,
        "name": "Ops",
        "slug": "ops",
        "type": "slack",
        "config": {"url": "https://hooks.example/T0/B0/secret"},
        "secret": "whsec_1",
    }
    row = decode(
        CONTROL_ENTITIES,
        control("channel", channel),
        Source("control.entities", 0, 9, b"channel:c1"),
    )
    values = dict(zip(CONTROL_ENTITIES.columns, row, strict=True))
    assert values["project_id"] == 3 and values["version"] == 9 and values["is_deleted"] == 0
    assert "secret" not in values["data"] and "hooks.example" not in values["data"]
    key = {
        "id": "k1",
        "project_id": 3,
        "scope": "read",
        "name": "k",
        "prefix": "pl_read_ab",
        "hash": "f" * 64,
        "created_at": "2026-01-01T00:00:00Z",
    }
    row = decode(
        CONTROL_ENTITIES, control("api_key", key), Source("control.entities", 0, 10, b"api_key:k1")
    )
    assert "f" * 64 not in row[5]


def test_a_control_tombstone_becomes_a_delete_row() -> None:
    from storage.rows import CONTROL_ENTITIES

    row = decode(CONTROL_ENTITIES, None, Source("control.entities", 0, 11, b"monitor:m1"))
    assert (row[0], row[1], row[-2], row[-1]) == ("monitor", "m1", 11, 1)
    with pytest.raises(RowError, match="type"):
        decode(CONTROL_ENTITIES, None, Source("control.entities", 0, 12, b"garbage"))
