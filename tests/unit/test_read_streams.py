"""The pure parts of exports and the live stream: encoding, paging bounds, filtering, slots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from storage import export
from storage.live_api import Slots, live_message


def pages(count: int, size: int) -> export.PageReader:
    async def read(after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        n = int(after or 0)
        rows = [{"n": n * size + i} for i in range(size)]
        return rows, (str(n + 1) if n + 1 < count else None)

    return read


async def _collect(rows: AsyncIterator[Any]) -> list[Any]:
    return [r async for r in rows]


@pytest.mark.parametrize(
    ("count", "size", "max_rows", "expected"),
    [(3, 2, 100, 6), (3, 2, 5, 5), (1, 0, 10, 0), (10, 4, 4, 4)],
)
def test_an_export_reads_pages_until_the_end_or_the_row_limit(
    count: int, size: int, max_rows: int, expected: int
) -> None:
    rows = asyncio.run(_collect(export.rows_of(pages(count, size), max_rows)))
    assert [r["n"] for r in rows] == list(range(expected))


async def _rows() -> AsyncIterator[dict[str, Any]]:
    yield {"id": "a", "attributes": {"x": 1}, "release": None}
    yield {"id": "b,c", "attributes": {}, "release": "1.0"}


def test_csv_has_a_header_and_nested_values_as_json() -> None:
    chunks = asyncio.run(_collect(export.encode(export.ExportFormat.CSV, _rows())))
    assert b"".join(chunks).decode().splitlines() == [
        "id,attributes,release",
        'a,"{""x"":1}",',
        '"b,c",{},1.0',
    ]


def test_ndjson_is_one_object_a_line() -> None:
    chunks = asyncio.run(_collect(export.encode(export.ExportFormat.NDJSON, _rows())))
    lines = b"".join(chunks).splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == ["a", "b,c"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'{"project_id": 1, "kind": "pageview"}', b'event: event\ndata: {"project_id":1,'),
        (b'{"project_id": 2, "kind": "pageview"}', None),
        (b'{"project_id": "1"}', None),
        (b"not json", None),
        (b"[1]", None),
        (None, None),
    ],
)
def test_live_messages_carry_only_the_projects_records(
    value: bytes | None, expected: bytes | None
) -> None:
    message = live_message("event", value, 1)
    if expected is None:
        assert message is None
    else:
        assert message is not None and message.startswith(expected)
        assert message.endswith(b"\n\n")


def test_slots_bound_streams_per_project_and_in_all() -> None:
    slots = Slots(max_per_project=2, max_total=3)
    assert [slots.take(1), slots.take(1), slots.take(1)] == [True, True, False]
    assert [slots.take(2), slots.take(3)] == [True, False]
    slots.give_back(1)
    assert slots.take(3) and slots.open == {1: 1, 2: 1, 3: 1}
