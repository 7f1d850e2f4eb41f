import math
from datetime import UTC, datetime
from uuid import uuid4

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


def ms(at: datetime) -> int:
    """DateTime64(3) ticks, as clickhouse-connect turns a datetime into them."""
    return math.floor(at.timestamp()) * 1000 + at.microsecond // 1000


def test_an_event_becomes_a_row_of_wire_values_in_column_order() -> None:
    eid = uuid4()
    row = decode(EVENTS, event(event_id=str(eid), distinct_id="u1"), SRC)
    values = dict(zip(EVENTS.columns, row, strict=True))
    assert values["event_id"] == str(eid)
    assert values["timestamp"] == ms(datetime(2026, 1, 1, tzinfo=UTC)) == 1_767_225_600_000
    assert values["received_at"] == 1_767_225_601_000
    assert values["distinct_id"] == "u1" and values["session_id"] == ""
    assert values["attributes"] == '{"a":1}'
    assert (values["_topic"], values["_partition"], values["_offset"]) == ("ingest.error", 1, 42)
    assert EVENTS.wire_types is not None and len(EVENTS.wire_types) == len(EVENTS.columns)


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-04T05:06:07.999999Z",
        "2026-03-04T05:06:07.9995+05:30",
        "2026-03-04T05:06:07.123-08:00",
        "2026-03-04T05:06:07",  # no zone: UTC
        "2026-03-04",
        "2026-03-04 05:06:07.5",
        "20260304T050607Z",
        "1969-12-31T23:59:59.9995Z",  # before the epoch: floored, not rounded to zero
        "1950-06-01T12:00:00.0001+01:00",
        "2026-03-04T05:06:07.000001-00:30",
    ],
)
def test_times_become_the_ticks_clickhouse_connect_made_of_them(text: str) -> None:
    parsed = datetime.fromisoformat(text)
    at = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    row = decode(EVENTS, event(timestamp=text), SRC)
    assert row[EVENTS.columns.index("timestamp")] == ms(at)


@pytest.mark.parametrize(
    "written",
    [
        "0B6F2A57-3F5A-4D1E-9A43-2C2F1F4D8E01",
        "{0b6f2a57-3f5a-4d1e-9a43-2c2f1f4d8e01}",
        "0b6f2a573f5a4d1e9a432c2f1f4d8e01",
        "urn:uuid:0b6f2a57-3f5a-4d1e-9a43-2c2f1f4d8e01",
    ],
)
def test_every_spelling_of_an_event_id_is_stored_as_its_canonical_text(written: str) -> None:
    row = decode(EVENTS, event(event_id=written), SRC)
    assert row[EVENTS.columns.index("event_id")] == "0b6f2a57-3f5a-4d1e-9a43-2c2f1f4d8e01"


def test_text_fields_keep_what_str_made_of_any_value() -> None:
    values = [None, "é", 5, 1.5, True, {"a": 1}]
    fields = ["distinct_id", "session_id", "release", "environment", "client_ip", "user_agent"]
    row = decode(EVENTS, event(**dict(zip(fields, values, strict=True))), SRC)
    stored = [row[EVENTS.columns.index(f)] for f in fields]
    assert stored == ["", "é", "5", "1.5", "True", "{'a': 1}"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty"),
        (b"{nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (event(event_id="x"), "event_id"),
        (event(event_id=...), "event_id is missing"),
        (event(event_id=12), "event_id"),
        (event(event_id="0b6f2a57-3f5a-4d1e-9a43-2c2f1f4d8e0"), "event_id"),
        (event(project_id=-1), "project_id"),
        (event(project_id=2**32), "project_id must be an integer from 0 to 4294967295"),
        (event(project_id=True), "project_id"),
        (event(project_id=1.0), "project_id"),
        (event(kind="bogus"), "kind"),
        (event(kind=["error"]), "unknown kind"),  # unhashable: refused, not a crash
        (event(kind={"a": 1}), "unknown kind"),
        (event(timestamp="soon"), "timestamp"),
        (event(timestamp=1767225600), "timestamp must be an ISO-8601 string"),
        (event(timestamp="2026-02-30T00:00:00Z"), "timestamp is not"),
        (event(received_at=...), "received_at"),
        (event(attributes=[1]), "attributes"),
        (event(attributes="x"), "attributes"),
    ],
)
def test_records_that_can_never_be_rows_say_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(RowError, match=reason):
        decode(EVENTS, value, SRC)


def test_the_first_problem_of_an_event_is_the_reason() -> None:
    with pytest.raises(RowError, match="event_id"):
        decode(EVENTS, event(event_id="x", project_id=-1, kind="bogus"), SRC)
    with pytest.raises(RowError, match="project_id"):
        decode(EVENTS, event(project_id=-1, kind="bogus", timestamp="soon"), SRC)
    with pytest.raises(RowError, match="kind"):
        decode(EVENTS, event(kind="bogus", timestamp="soon"), SRC)


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


def test_rows_added_a_partition_at_a_time_keep_the_token_and_the_commits() -> None:
    rows = [decode(EVENTS, event(), SRC) for _ in range(4)]
    one_by_one, at_once = Batch(), Batch()
    for offset, row in zip([5, 6, 8, 9], rows, strict=True):
        one_by_one.add_row(EVENTS, "ingest.error", 0, offset, row)
    one_by_one.add_dead("ingest.error", 0, 7, None, b"x", "invalid row: not JSON")
    at_once.add_rows(EVENTS, "ingest.error", 0, rows, [5, 6, 8, 9])
    at_once.add_dead("ingest.error", 0, 7, None, b"x", "invalid row: not JSON")
    at_once.add_rows(EVENTS, "ingest.error", 1, [], [])  # a partition with only dead letters
    assert at_once.tables["events"].token() == one_by_one.tables["events"].token()
    assert at_once.commit_offsets() == one_by_one.commit_offsets() == {("ingest.error", 0): 10}
    assert at_once.rows == 4 and len(at_once) == 5


def test_a_table_batch_pivots_its_rows_into_columns() -> None:
    rows = [
        decode(EVENTS, event(distinct_id=f"u{i}"), Source("ingest.error", 0, i)) for i in range(3)
    ]
    batch = Batch()
    batch.add_rows(EVENTS, "ingest.error", 0, rows, [0, 1, 2])
    columns = dict(zip(EVENTS.columns, batch.tables["events"].columns, strict=True))
    assert columns["distinct_id"] == ("u0", "u1", "u2")
    assert columns["_offset"] == (0, 1, 2)
