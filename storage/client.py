"""The one way to reach ClickHouse: a clickhouse-connect client built from a URL.

``chdb://<dir>`` opens the embedded engine in this process (one process per data
directory); ``http(s)://host:8123/`` reaches a server. ``Engine`` serialises calls on
a small thread pool so blocking driver calls never stall an asyncio loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from pulseline.settings import StorageSettings

T = TypeVar("T")


def connect(settings: StorageSettings) -> Client:
    dsn = settings.clickhouse_dsn
    if dsn.startswith("chdb://"):
        Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=dsn)
    return clickhouse_connect.get_client(dsn=dsn, autogenerate_session_id=False)


class Engine:
    """A client plus the executor its blocking calls run on."""

    def __init__(self, client: Client, *, embedded: bool, database: str) -> None:
        self.client = client
        self.database = database
        self._lock = threading.Lock() if embedded else None
        self._pool = ThreadPoolExecutor(
            max_workers=1 if embedded else 4, thread_name_prefix="clickhouse"
        )

    @classmethod
    def open(cls, settings: StorageSettings) -> Engine:
        return cls(
            connect(settings), embedded=settings.embedded, database=settings.clickhouse_database
        )

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._lock is None:
            return fn(*args, **kwargs)
        with self._lock:
            return fn(*args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: self.call(fn, *args, **kwargs))

    async def rows(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        result = await self.run(self.client.query, sql, parameters=parameters, settings=settings)
        names: Sequence[str] = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()
