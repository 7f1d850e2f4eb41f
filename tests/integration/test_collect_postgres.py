"""``pulseline collect postgres`` against a real PostgreSQL server and a recording gateway.

The server is started by ``tests.pg_fixture`` from Debian's ``postgresql`` package
(``make postgres``); the gateway is an in-process fake that records every request. The
collector runs as the real command, in a subprocess, and is stopped with Ctrl-C (SIGINT).
tests/integration/test_collect_clickhouse.py takes the metrics on to ClickHouse.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from pulseline.schemas import EventIn
from pulseline.sdk.testing import FakeGateway
from tests.pg_fixture import PgServer, find_bindir, has_pg_stat_statements, postgres_server

pytestmark = pytest.mark.integration

BINDIR = find_bindir()
if BINDIR is None:
    pytest.skip(
        "no PostgreSQL server binary: run 'make postgres' (Debian's postgresql and "
        "postgresql-contrib) or set PULSELINE_TEST_PG_BINDIR",
        allow_module_level=True,
    )
STATEMENTS = has_pg_stat_statements(BINDIR)
needs_statements = pytest.mark.skipif(
    not STATEMENTS, reason="these PostgreSQL binaries do not ship pg_stat_statements"
)

PASSWORD = "Pg-s3cret/with@chars"
INGEST_KEY = "pl_ingest_collector_test_key"
QUERY = "SELECT count(*) FROM orders WHERE amount > %s"
ALL_STATEMENTS_NOTE = "pg_stat_statements is not installed in database 'nostats'"


def raw(gateway: FakeGateway) -> str:
    """Everything the collector sent: headers and bodies, as a secret would show in them."""
    return "\n".join(f"{r.headers}\n{r.raw.decode()}" for r in gateway.requests())


@pytest.fixture
def recorder() -> Iterator[FakeGateway]:
    with FakeGateway() as gateway:
        yield gateway


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    assert BINDIR is not None
    with postgres_server(BINDIR, stat_statements=True) as server:
        server.execute("CREATE DATABASE app", "CREATE DATABASE nostats")
        server.seed_app(PASSWORD)
        workload(server)
        yield server


def workload(server: PgServer, rounds: int = 5) -> None:
    import psycopg

    with psycopg.connect(server.superuser_dsn("app"), autocommit=True) as conn:
        for i in range(rounds):
            conn.execute(QUERY, (i,))
            with conn.transaction():
                conn.execute("UPDATE orders SET amount = amount WHERE id = %s", (i + 1,))


def dsn(server: PgServer, dbname: str) -> str:
    return server.uri("collector", quote(PASSWORD, safe=""), dbname)


def collect(*argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PULSELINE_INGEST_KEY": INGEST_KEY}
    env.pop("PGPASSWORD", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pulseline.cli", "collect", "postgres", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stop(proc: subprocess.Popen[str], how: int = signal.SIGINT) -> tuple[int, str, str]:
    proc.send_signal(how)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def wait_for(check: Callable[[], bool], timeout_s: float, between: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        between()
        time.sleep(0.2)
    return check()


def named(events: list[dict[str, Any]], name: str, **tags: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["attributes"]["name"] == name
        and all(e["attributes"].get("tags", {}).get(k) == v for k, v in tags.items())
    ]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (PASSWORD, quote(PASSWORD, safe="")):
            assert secret not in text


@needs_statements
def test_the_loop_sends_sane_metrics_and_never_the_password(
    pg: PgServer, recorder: FakeGateway
) -> None:
    recorder.answer(503, retry_after="1")
    proc = collect(
        "--dsn", dsn(pg, "app"), "--url", recorder.url, "--interval", "1s", "--top-statements", "50"
    )

    def statement_rates() -> list[dict[str, Any]]:
        return [
            e
            for e in named(recorder.events(), "postgres.statement.calls_rate")
            if "FROM orders WHERE amount >" in e["attributes"]["tags"]["query"]
            and e["attributes"]["value"] > 0
        ]

    try:
        arrived = wait_for(lambda: bool(statement_rates()), 45, lambda: workload(pg, 2))
    finally:
        code, out, err = stop(proc)
    assert arrived, f"no statement rate arrived\nstdout:\n{out}\nstderr:\n{err}"
    assert code == 0 and err.rstrip().endswith("stopped"), err

    events = recorder.events()
    for event in events:
        EventIn.model_validate(event)
    # The first batch met a 503 and was sent again, with the same event ids.
    first, second, *_ = recorder.requests()
    assert first.status == 503 and second.status == 202
    assert [e["event_id"] for e in first.events] == [e["event_id"] for e in second.events]
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))
    assert all(r.headers["authorization"] == f"Bearer {INGEST_KEY}" for r in recorder.requests())

    [*_, size] = named(events, "postgres.table.size_bytes", database="app", table="orders")
    assert size["attributes"]["value"] > 100_000
    assert size["attributes"]["unit"] == "bytes"
    commits = named(events, "postgres.xact_commit_rate", database="app")
    assert commits and all(e["attributes"]["value"] >= 0 for e in commits)
    assert max(e["attributes"]["value"] for e in commits) > 0
    ratios = named(events, "postgres.cache_hit_ratio", database="app")
    assert ratios and all(0 <= e["attributes"]["value"] <= 1 for e in ratios)
    assert named(events, "postgres.database.size_bytes", database="nostats")
    active = named(events, "postgres.connections", database="app", state="active")
    assert active and all(e["attributes"]["value"] >= 1 for e in active)
    assert all(
        e["attributes"]["value"] >= 0 for e in events if e["attributes"]["name"].endswith("_rate")
    )
    means = [
        e
        for e in named(events, "postgres.statement.mean_time_ms", database="app")
        if e["attributes"]["tags"]["query"] == "SELECT count(*) FROM orders WHERE amount > $1"
    ]
    assert means and means[-1]["attributes"]["value"] > 0
    assert means[-1]["attributes"]["tags"]["instance"] == f"127.0.0.1:{pg.port}"
    # pg_stat_statements keeps the literal of CREATE ROLE ... PASSWORD; the tag does not.
    roles = [
        e["attributes"]["tags"]["query"]
        for e in named(events, "postgres.statement.mean_time_ms")
        if e["attributes"]["tags"]["query"].startswith("CREATE ROLE collector")
    ]
    assert roles and all("PASSWORD ****" in query for query in roles), roles
    # The collector leaves its own statements out.
    assert not [
        e
        for e in events
        if "pulseline-collector" in e["attributes"].get("tags", {}).get("query", "")
    ]
    assert "****" in err
    assert_no_secret(raw(recorder), out, err)


def test_without_pg_stat_statements_it_says_so_once_and_sends_the_rest(
    pg: PgServer, recorder: FakeGateway
) -> None:
    proc = collect("--dsn", dsn(pg, "nostats"), "--url", recorder.url, "--interval", "1s")

    def polls() -> int:
        return len([r for r in recorder.requests() if r.status == 202])

    try:
        arrived = wait_for(lambda: polls() >= 3, 30, lambda: None)
    finally:
        code, out, err = stop(proc, signal.SIGTERM)
    assert arrived, f"fewer than 3 polls\nstdout:\n{out}\nstderr:\n{err}"
    assert code == 0 and err.rstrip().endswith("stopped"), err
    assert err.count(ALL_STATEMENTS_NOTE) == 1, err
    assert "the other metrics continue" in err
    events = recorder.events()
    assert not [e for e in events if e["attributes"]["name"].startswith("postgres.statement.")]
    assert named(events, "postgres.xact_commit_rate", database="nostats")
    assert named(events, "postgres.connections", database="nostats", state="active")
    assert named(events, "postgres.database.size_bytes", database="app")
    assert_no_secret(raw(recorder), out, err)


@needs_statements
def test_an_extension_that_is_not_preloaded_is_said_and_the_rest_sent(
    recorder: FakeGateway,
) -> None:
    assert BINDIR is not None
    with postgres_server(BINDIR, stat_statements=False) as bare:
        bare.execute(
            "CREATE EXTENSION pg_stat_statements",
            f"CREATE ROLE collector LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor",
        )
        proc = collect("--dsn", dsn(bare, "postgres"), "--url", recorder.url, "--once")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.count("pg_stat_statements is installed but not loaded") == 1, err
    events = recorder.events()
    assert named(events, "postgres.database.size_bytes", database="postgres")
    assert named(events, "postgres.connections.max")
    assert not [e for e in events if e["attributes"]["name"].startswith("postgres.statement.")]
    assert_no_secret(raw(recorder), out, err)


def test_a_wrong_password_fails_the_poll_without_showing_it(
    pg: PgServer, recorder: FakeGateway
) -> None:
    wrong = "Wr0ng-" + PASSWORD
    proc = collect(
        "--dsn",
        pg.uri("collector", quote(wrong, safe=""), "app"),
        "--url",
        recorder.url,
        "--once",
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "password authentication failed" in err
    assert recorder.requests() == []
    for secret in (wrong, quote(wrong, safe="")):
        assert secret not in out + err
