"""The sink's wire-typed insert stores exactly what an insert of Python values stores.

Rows of ``events`` carry the event id as text and times as DateTime64(3) ticks, sent as
``EVENTS.wire_types`` for ClickHouse to convert. The reference here is the insert the
sink made before: UUIDs and UTC datetimes, typed by the server's own column types.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from pulseline.settings import StorageSettings
from storage.batch import Batch
from storage.client import Engine
from storage.migrate import migrate
from storage.rows import EVENTS, Source, decode
from storage.sink import insert_batch

pytestmark = pytest.mark.integration

# Spellings of recent times (older rows would fall to the tables' TTL while compared).
NOW = datetime.now(UTC).replace(microsecond=999_500)
TIMES = [
    NOW.isoformat(),
    NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    NOW.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
    NOW.astimezone(timezone(timedelta(hours=-8))).isoformat(timespec="milliseconds"),
    NOW.replace(tzinfo=None).isoformat(),  # no zone: UTC
    NOW.date().isoformat(),
    NOW.strftime("%Y%m%dT%H%M%SZ"),
    (NOW - timedelta(days=3)).isoformat(sep=" ", timespec="microseconds"),
]
IDS = [
    "0b6f2a57-3f5a-4d1e-9a43-2c2f1f4d8e01",
    "0B6F2A57-3F5A-4D1E-9A43-2C2F1F4D8E02",
    "{0b6f2a57-3f5a-4d1e-9a43-2c2f1f4d8e03}",
    "0b6f2a573f5a4d1e9a432c2f1f4d8e04",
]
KINDS = ["error", "transaction", "pageview", "event", "web_vital", "check_in", "metric"]
ATTRIBUTES: list[Any] = [
    {"url": "https://x.example/p?q=1", "name": "n", "value": 1.25, "status": "ok"},
    None,
    {"message": 'h\u00e9\n"q"', "exception": [{"type": "T", "value": "v"}]},
    {"monitor": "m", "status": "error", "exit_code": 3, "duration_ms": 5.5, "tags": {"k": "v"}},
]


def documents() -> list[dict[str, Any]]:
    return [
        {
            "event_id": IDS[i] if i < len(IDS) else str(uuid.uuid4()),
            "project_id": i,
            "kind": KINDS[i % len(KINDS)],
            "timestamp": TIMES[i % len(TIMES)],
            "received_at": TIMES[(i + 3) % len(TIMES)],
            "distinct_id": [None, "u", 5, 1.5, True, "é"][i % 6],
            "session_id": "s",
            "release": None,
            "environment": "prod",
            "user_agent": "ua",
            "attributes": ATTRIBUTES[i % len(ATTRIBUTES)],
        }
        for i in range(3 * len(TIMES) * len(KINDS))
    ]


def utc(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def python_row(doc: dict[str, Any], offset: int) -> list[Any]:
    def text(value: Any) -> str:
        return "" if value is None else str(value)

    fields = ("distinct_id", "session_id", "release", "environment", "client_ip", "user_agent")
    return [
        doc["project_id"],
        doc["kind"],
        utc(doc["timestamp"]),
        uuid.UUID(doc["event_id"]),
        utc(doc["received_at"]),
        *[text(doc.get(f)) for f in fields],
        orjson.dumps(doc["attributes"] or {}).decode(),
        "ingest.x",
        1,
        offset,
    ]


def test_every_table_fed_by_events_holds_the_same_rows(storage_env: dict[str, str]) -> None:
    wire = Engine.open(StorageSettings.from_env(storage_env))
    typed = Engine(wire.client, embedded=True, database=f"{wire.database}_typed")
    for engine in (wire, typed):
        migrate(engine)
    docs = documents()
    typed.client.insert(
        f"{typed.database}.events",
        [python_row(d, i) for i, d in enumerate(docs)],
        column_names=list(EVENTS.columns),
    )
    batch = Batch()
    rows = [decode(EVENTS, orjson.dumps(d), Source("ingest.x", 1, i)) for i, d in enumerate(docs)]
    batch.add_rows(EVENTS, "ingest.x", 1, rows, list(range(len(docs))))
    insert_batch(wire, batch.tables["events"], {"insert_deduplication_token": "wire"})

    families = ("errors", "transactions", "pageviews", "web_vitals", "check_ins", "metrics")
    for table in ("events", *families):
        sql = f"SELECT * EXCEPT (_inserted_at) FROM {{db}}.{table} ORDER BY event_id"
        expected = typed.client.query(sql.format(db=typed.database)).result_rows
        assert expected, table
        assert wire.client.query(sql.format(db=wire.database)).result_rows == expected, table
    wire.close()
