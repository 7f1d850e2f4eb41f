"""Streamed exports of list endpoints (``?format=csv|ndjson``).

A list endpoint with a format walks its keyset pages (``pages``) and streams rows as they
come, never holding more than one page, and stops after ``MAX_EXPORT_ROWS`` rows (the
``X-Export-Limit`` header says so; narrow the range for more). CSV columns are the first
row's keys; nested values are written as JSON text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from typing import Any

import orjson
from fastapi.responses import StreamingResponse

MAX_EXPORT_ROWS = 100_000

# Given the cursor of the previous page (None first), a page of rows and the next cursor.
PageReader = Callable[[str | None], Awaitable[tuple[list[dict[str, Any]], str | None]]]


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


MEDIA = {ExportFormat.CSV: "text/csv; charset=utf-8", ExportFormat.NDJSON: "application/x-ndjson"}


async def rows_of(
    read: PageReader, max_rows: int = MAX_EXPORT_ROWS
) -> AsyncIterator[dict[str, Any]]:
    """Every row of every page, at most ``max_rows``."""
    cursor: str | None = None
    sent = 0
    while True:
        page, cursor = await read(cursor)
        for row in page[: max_rows - sent]:
            yield row
        sent += len(page)
        if cursor is None or sent >= max_rows or not page:
            return


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return "" if value is None else value


async def encode(fmt: ExportFormat, rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """``rows`` as NDJSON lines or CSV (header first) chunks."""
    if fmt is ExportFormat.NDJSON:
        async for row in rows:
            yield orjson.dumps(row) + b"\n"
        return
    columns: list[str] | None = None
    async for row in rows:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if columns is None:
            columns = list(row)
            writer.writerow(columns)
        writer.writerow([_cell(row.get(c)) for c in columns])
        yield buffer.getvalue().encode()


def response(fmt: ExportFormat, name: str, read: PageReader) -> StreamingResponse:
    """The streamed export of ``read``'s pages, named ``<name>.<format>`` for downloads."""
    return StreamingResponse(
        encode(fmt, rows_of(read)),
        media_type=MEDIA[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt.value}"',
            "X-Export-Limit": str(MAX_EXPORT_ROWS),
        },
    )
