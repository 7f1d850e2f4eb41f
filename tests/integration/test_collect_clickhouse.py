"""``pulseline collect postgres`` end to end, from a real PostgreSQL to ClickHouse.

PostgreSQL is Debian's ``postgresql`` package (``make postgres``), started by
``tests.pg_fixture`` on 127.0.0.1 with pg_stat_statements in ``shared_preload_libraries``.
The collector runs as the real command, in a subprocess, with a password in its DSN; the
gateway is the real app under uvicorn with the real Kafka producer; the sink stores the
``ingest.metric`` topic into the embedded ClickHouse (chdb). Everything asserted is read
back from ClickHouse: every metric sent is stored once, the database-level metrics are
sane, a synthetic slow query heads the top statements by total time, and the DSN's
password is in no stored row.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
import pytest
from starlette.types import Message, Receive, Scope, Send

from ingest_gateway.app import create_app
from ingest_gateway.producer import KafkaProducer
from pulseline.keys import ApiKey, StaticKeyRing, new_key
from pulseline.keys import Scope as KeyScope
from pulseline.schemas import EventKind
from pulseline.settings import GatewaySettings, StorageSettings
from pulseline.topics import INGEST
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.sink import Sink
from tests.helpers import eventually, serving
from tests.pg_fixture import PgServer, find_bindir, has_pg_stat_statements, postgres_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

BINDIR = find_bindir()
if BINDIR is None or not has_pg_stat_statements(BINDIR):
    pytest.skip(
        "no PostgreSQL with pg_stat_statements: run 'make postgres' (Debian's postgresql and "
        "postgresql-contrib) or set PULSELINE_TEST_PG_BINDIR",
        allow_module_level=True,
    )

PROJECT = 73
PASSWORD = "Ch-s3cret/for@collector"
SLOW_S, MEDIUM_S = 0.25, 0.05
# Two shapes: pg_stat_statements tells queries apart by their parse tree, not by aliases.
SLOW = "SELECT count(*), pg_sleep(%s) FROM orders WHERE amount > %s"
MEDIUM = "SELECT count(*) FROM pg_sleep(%s)"
# As pg_stat_statements normalises them, and the collector sends them in the ``query`` tag.
SLOW_TEXT = "SELECT count(*), pg_sleep($1) FROM orders WHERE amount > $2"
MEDIUM_TEXT = "SELECT count(*) FROM pg_sleep($1)"
ROUNDS, RUNS = 4, 2  # slow and medium queries: RUNS of each per round, after the baseline
MAX_CONNECTIONS = 30  # tests.pg_fixture.SERVER_SETTINGS
SENT = re.compile(r"sent (\d+) of (\d+) metrics")


@pytest.fixture
def pg() -> Iterator[PgServer]:
    assert BINDIR is not None
    with postgres_server(BINDIR, stat_statements=True) as server:
        assert server.stat_statements, "pg_stat_statements is not preloaded"
        server.execute("CREATE DATABASE app")
        server.seed_app(PASSWORD)
        # One run of each before the collector starts: in its first poll (the baseline),
        # so every later run shows in the rates.
        workload(server, rounds=1, runs=1)
        yield server


def workload(server: PgServer, rounds: int = ROUNDS, runs: int = RUNS) -> None:
    with psycopg.connect(server.superuser_dsn("app"), autocommit=True) as conn:
        for i in range(rounds):
            for _ in range(runs):
                conn.execute(SLOW, (SLOW_S, 50))
                conn.execute(MEDIUM, (MEDIUM_S,))
            with conn.transaction():
                conn.execute("UPDATE orders SET amount = amount WHERE id = %s", (i + 1,))


@dataclass
class Posts:
    """ASGI wrapper counting the gateway's answers to ``POST /v1/events``."""

    app: Any
    statuses: list[int] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def note(message: Message) -> None:
            if message["type"] == "http.response.start" and scope["path"] == "/v1/events":
                self.statuses.append(message["status"])
            await send(message)

        await self.app(scope, receive, note)

    def accepted(self) -> int:
        return self.statuses.count(202)


@pytest.fixture
def gateway(storage_env: dict[str, str]) -> Iterator[tuple[str, str, Posts]]:
    """The real gateway and producer under uvicorn: (base URL, ingest key, answers)."""
    key = new_key(KeyScope.INGEST)
    keyring = StaticKeyRing()
    keyring.add(key, ApiKey(PROJECT, KeyScope.INGEST))
    settings = GatewaySettings.from_env(storage_env)
    posts = Posts(create_app(settings, keyring, KafkaProducer(settings)))
    with serving(posts) as port:
        yield f"http://127.0.0.1:{port}", key, posts


def collect(dsn: str, url: str, key: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PULSELINE_INGEST_KEY": key}
    env.pop("PGPASSWORD", None)
    argv = ["--dsn", dsn, "--url", url, "--interval", "1s", "--top-statements", "50"]
    return subprocess.Popen(
        [sys.executable, "-m", "pulseline.cli", "collect", "postgres", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


@dataclass(frozen=True)
class Metric:
    at: datetime
    name: str
    value: float
    unit: str
    tags: dict[str, str]


async def stored_metrics(engine: Engine) -> list[Metric]:
    rows = await engine.rows(
        f"SELECT timestamp, attributes FROM {engine.database}.events FINAL "
        "WHERE project_id = {project:UInt32} AND kind = 'metric' ORDER BY timestamp",
        {"project": PROJECT},
    )
    out = []
    for row in rows:
        attrs = orjson.loads(row["attributes"])
        out.append(
            Metric(row["timestamp"], attrs["name"], attrs["value"], attrs["unit"], attrs["tags"])
        )
    return out


def named(metrics: list[Metric], name: str, **tags: str) -> list[Metric]:
    return [
        m for m in metrics if m.name == name and all(m.tags.get(k) == v for k, v in tags.items())
    ]


def accrued_ms(metrics: list[Metric], polls: list[datetime]) -> dict[str, float]:
    """Execution time per query of database ``app`` over the run, from the stored
    ``total_time_ms_rate`` samples: each rate times the gap to the poll before it."""
    before = dict(zip(polls[1:], polls[:-1], strict=True))
    totals: dict[str, float] = {}
    for m in named(metrics, "postgres.statement.total_time_ms_rate", database="app"):
        gap = (m.at - before[m.at]).total_seconds()
        totals[m.tags["query"]] = totals.get(m.tags["query"], 0.0) + m.value * gap
    return totals


async def stored_texts(engine: Engine) -> list[str]:
    """Every row of every table of the test's database, as text."""
    tables = await engine.rows(
        "SELECT name FROM system.tables WHERE database = {db:String}", {"db": engine.database}
    )
    assert {"events", "project_counts"} <= {t["name"] for t in tables}
    texts = []
    for table in tables:
        rows = await engine.rows(f"SELECT * FROM {engine.database}.`{table['name']}`")
        texts += [repr(row) for row in rows]
    return texts


def test_collected_metrics_reach_clickhouse_with_the_slow_query_on_top(
    pg: PgServer, gateway: tuple[str, str, Posts], storage_env: dict[str, str]
) -> None:
    url, key, posts = gateway
    settings = StorageSettings.from_env(storage_env)
    engine = Engine.open(settings)
    migrate(engine)
    dsn = pg.uri("collector", quote(PASSWORD, safe=""), "app")

    async def scenario() -> tuple[int, str, str, list[Metric], list[str]]:
        sink = Sink(settings, engine, StorageMetrics())
        await sink.start()
        task = asyncio.create_task(sink.run())
        proc = collect(dsn, url, key)
        try:
            # The first poll is the baseline; the workload runs after it, over several polls.
            assert await eventually(lambda: _at_least(posts, 1), timeout_s=30), "no first poll"
            await asyncio.to_thread(workload, pg)
            done = posts.accepted()
            assert await eventually(lambda: _at_least(posts, done + 2), timeout_s=15)
            code, out, err = await asyncio.to_thread(stop, proc)
            assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
            sent = [(int(a), int(n)) for a, n in SENT.findall(out)]
            assert sent and all(a == n for a, n in sent), out
            expected = sum(a for a, _ in sent)

            async def all_stored() -> bool:
                return len(await stored_metrics(engine)) >= expected

            assert await eventually(all_stored, timeout_s=30), "not every metric was stored"
            return expected, out, err, await stored_metrics(engine), await stored_texts(engine)
        finally:
            if proc.returncode is None:
                stop(proc)
            await sink.stop()
            await task
            await sink.close()

    started = time.monotonic()
    try:
        expected, out, err, metrics, texts = asyncio.run(scenario())
    finally:
        engine.close()
    took = time.monotonic() - started

    # Every metric the collector sent is stored exactly once, as this project's.
    assert posts.statuses and set(posts.statuses) == {202}, posts.statuses
    assert len(metrics) == expected
    polls = sorted({m.at for m in metrics})
    assert len(polls) == len(posts.statuses) >= 4, (len(polls), posts.statuses)
    instance = f"127.0.0.1:{pg.port}"
    assert all(m.tags["instance"] == instance for m in metrics)

    # Database-level metrics, with sane values.
    commits = named(metrics, "postgres.xact_commit_rate", database="app")
    assert len(commits) == len(polls) - 1  # a rate from the second poll on
    assert all(0 <= m.value < 10_000 and m.unit == "1/s" for m in commits)
    assert max(m.value for m in commits) >= 1, [m.value for m in commits]
    ratios = named(metrics, "postgres.cache_hit_ratio", database="app")
    assert ratios and all(0 <= m.value <= 1 and m.unit == "ratio" for m in ratios)
    assert max(m.value for m in ratios) > 0.9, [m.value for m in ratios]
    active = named(metrics, "postgres.connections", database="app", state="active")
    assert len(active) == len(polls) and all(m.value >= 1 for m in active)  # the collector
    most = [m.value for m in named(metrics, "postgres.connections.max")]
    assert most == [MAX_CONNECTIONS] * len(polls), most
    sizes = named(metrics, "postgres.database.size_bytes", database="app")
    [*_, table] = named(metrics, "postgres.table.size_bytes", database="app", table="orders")
    assert len(sizes) == len(polls) and table.value > 500_000
    assert all(table.value < m.value < 1 << 30 and m.unit == "bytes" for m in sizes)

    # The top statements: the slow query heads them by total time, the medium one is next
    # to it, and each mean is what pg_sleep took.
    totals = accrued_ms(metrics, polls)
    ranking = sorted(totals, key=totals.__getitem__, reverse=True)
    runs = ROUNDS * RUNS
    assert ranking[:2] == [SLOW_TEXT, MEDIUM_TEXT], [(q, totals[q]) for q in ranking[:5]]
    assert 0.7 * runs * SLOW_S * 1000 < totals[SLOW_TEXT] < 1.5 * runs * SLOW_S * 1000, totals
    assert 0.7 * runs * MEDIUM_S * 1000 < totals[MEDIUM_TEXT] < 1.5 * runs * MEDIUM_S * 1000
    [*_, slow_mean] = named(metrics, "postgres.statement.mean_time_ms", query=SLOW_TEXT)
    [*_, medium_mean] = named(metrics, "postgres.statement.mean_time_ms", query=MEDIUM_TEXT)
    assert SLOW_S * 1000 <= slow_mean.value < 2 * SLOW_S * 1000, slow_mean
    assert MEDIUM_S * 1000 <= medium_mean.value < 2 * MEDIUM_S * 1000, medium_mean
    assert slow_mean.tags["database"] == "app" and slow_mean.unit == "ms"
    # In every poll's top list, the baseline included (it ran once before the collector).
    assert {m.at for m in named(metrics, "postgres.statement.mean_time_ms", query=SLOW_TEXT)} == (
        set(polls)
    )
    # The collector's own statements are left out of the top list.
    assert not [m for m in metrics if "pulseline-collector" in m.tags.get("query", "")]

    # The password: masked in the statement that holds it, in no stored row at all.
    roles = {
        m.tags["query"]
        for m in named(metrics, "postgres.statement.mean_time_ms")
        if m.tags["query"].startswith("CREATE ROLE collector")
    }
    assert roles and all("PASSWORD ****" in query for query in roles), roles
    assert len(texts) > len(metrics)  # the events, and the migrations' ledger
    assert any("CREATE ROLE collector LOGIN PASSWORD ****" in text for text in texts)
    for secret in (PASSWORD, quote(PASSWORD, safe=""), key):
        assert not [text for text in texts if secret in text]
        assert secret not in out + err
    topic = INGEST[EventKind.METRIC].physical(settings.topic_prefix)
    assert any(topic in text for text in texts)

    print(
        f"\n{len(metrics)} metric rows over {len(polls)} polls in {took:.1f}s; top by total "
        + ", ".join(f"#{i + 1} {q!r} {totals[q]:.0f} ms" for i, q in enumerate(ranking[:3]))
        + f"; slow mean {slow_mean.value:.1f} ms"
    )


async def _at_least(posts: Posts, n: int) -> bool:
    return posts.accepted() >= n
