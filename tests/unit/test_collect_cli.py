"""``pulseline collect postgres``: the poll loop, its messages and its exit codes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from pulseline.cli import build_parser, main
from pulseline.collectors.pg_metrics import DatabaseRow, PostgresMetrics, Snapshot
from pulseline.collectors.postgres import Collector, SourceError
from pulseline.collectors.redact import Redactor
from pulseline.collectors.sender import SendReport, Unauthorized
from pulseline.ports import free_port

PASSWORD = "s3cr3t-Pa55"
DSN = f"postgresql://app:{PASSWORD}@db.test:5432/shop"


class FakeSource:
    """Plays a script: a snapshot (with notices) or a SourceError per poll."""

    def __init__(self, *script: tuple[Snapshot, list[str]] | SourceError) -> None:
        self.script = list(script)
        self.closed = False
        self.polls = 0

    def read(self) -> tuple[Snapshot, list[str]]:
        self.polls += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, SourceError):
            raise step
        return step

    def close(self) -> None:
        self.closed = True


class FakeSink:
    def __init__(self, report: SendReport | Exception | None = None) -> None:
        self.sent: list[list[dict[str, Any]]] = []
        self.report = report
        self.closed = False

    def send(self, events: Sequence[dict[str, Any]]) -> SendReport:
        self.sent.append(list(events))
        if isinstance(self.report, Exception):
            raise self.report
        return self.report or SendReport(accepted=len(events))

    def close(self) -> None:
        self.closed = True


def snap(at: float = 0.0, commits: float = 10) -> Snapshot:
    row = DatabaseRow("shop", commits, 0, 1, 9, 0, 0, 0, "r", 8192.0)
    return Snapshot(at=at, database="shop", instance="db.test:5432", databases=[row])


def collector(source: FakeSource, sink: FakeSink) -> tuple[Collector, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    redact = Redactor.for_dsn(DSN)
    c = Collector(
        source,
        PostgresMetrics(redact=redact),
        sink,
        redact,
        tags={"env": "test"},
        out=out,
        err=err,
        wall_clock=lambda: datetime(2026, 3, 1, tzinfo=UTC),
    )
    return c, out, err


def test_a_poll_sends_the_metrics_with_the_common_tags() -> None:
    sink = FakeSink()
    c, out, _ = collector(FakeSource((snap(), [])), sink)
    assert c.poll_once()
    [events] = sink.sent
    size = next(e for e in events if e["attributes"]["name"] == "postgres.database.size_bytes")
    assert size["attributes"]["tags"] == {
        "instance": "db.test:5432",
        "env": "test",
        "database": "shop",
    }
    assert size["timestamp"] == "2026-03-01T00:00:00+00:00"
    assert f"sent {len(events)} of {len(events)} metrics" in out.getvalue()


def test_a_notice_is_said_once_however_many_polls_repeat_it() -> None:
    notice = "pg_stat_statements is not installed in database 'shop'"
    source = FakeSource(
        (snap(0.0), [notice]), (snap(10.0, 20), [notice]), (snap(20.0, 30), [notice])
    )
    sink = FakeSink()
    c, _, err = collector(source, sink)
    for _ in range(3):
        assert c.poll_once()
    assert err.getvalue().count(notice) == 1
    assert any(e["attributes"]["name"] == "postgres.xact_commit_rate" for e in sink.sent[-1])


def test_a_server_that_stays_down_is_reported_once_and_its_return_too() -> None:
    down = SourceError(f"cannot connect to PostgreSQL: refused ({PASSWORD})")
    source = FakeSource(down, down, down, (snap(), []))
    c, _, err = collector(source, FakeSink())
    assert [c.poll_once() for _ in range(4)] == [False, False, False, True]
    said = err.getvalue()
    assert said.count("cannot connect") == 1 and "answers again" in said
    assert PASSWORD not in said


def test_events_lost_or_rejected_are_said_and_fail_the_poll() -> None:
    lost = SendReport(dropped=3, problems=["gateway answered 503: down; dropped 3 events"])
    c, _, err = collector(FakeSource((snap(), [])), FakeSink(lost))
    assert not c.poll_once()
    assert "dropped 3 events" in err.getvalue()
    rejected = SendReport(accepted=1, rejected=["value: bad", "value: bad"])
    c, _, err = collector(FakeSource((snap(), [])), FakeSink(rejected))
    assert not c.poll_once()
    assert "rejected 2 events, the first: value: bad" in err.getvalue()


def test_once_exits_0_when_all_went_well_and_1_otherwise() -> None:
    ok_source, ok_sink = FakeSource((snap(), [])), FakeSink()
    c, _, _ = collector(ok_source, ok_sink)
    assert c.run(10.0, once=True) == 0
    assert ok_source.closed and ok_sink.closed
    c, _, _ = collector(FakeSource(SourceError("cannot connect")), FakeSink())
    assert c.run(10.0, once=True) == 1


def test_the_loop_polls_on_a_fixed_grid_until_ctrl_c() -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt
        now[0] += seconds + (25.0 if len(sleeps) == 1 else 0.0)  # one poll runs long

    source, sink = FakeSource((snap(), [])), FakeSink()
    c, _, err = collector(source, sink)
    assert c.run(10.0, sleep=sleep, clock=lambda: now[0]) == 0
    assert sleeps == [10.0, 5.0, 10.0]
    assert source.polls == 3
    assert source.closed and sink.closed
    assert err.getvalue().endswith("stopped\n")


def test_a_refused_ingest_key_ends_the_loop_with_1() -> None:
    source = FakeSource((snap(), []))
    c, _, err = collector(source, FakeSink(Unauthorized("the API key is not known")))
    assert c.run(10.0, sleep=lambda s: None) == 1
    assert "refused the ingest key: the API key is not known" in err.getvalue()
    assert source.closed


# The command line


def test_the_command_reads_its_flags() -> None:
    args = build_parser().parse_args(
        ["collect", "postgres", "--interval", "1m", "--tag", "env=prod", "--top-statements", "5"]
    )
    assert args.interval == 60.0 and args.tag == [("env", "prod")] and args.top_statements == 5
    assert args.once is False and args.max_tables == 50


@pytest.mark.parametrize(
    "argv",
    [
        ["--interval", "soon"],
        ["--interval", "0"],
        ["--top-statements", "-1"],
        ["--tag", "novalue"],
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["collect", "postgres", *argv])
    assert exit_.value.code == 2


def test_without_an_ingest_key_it_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PULSELINE_INGEST_KEY", raising=False)
    assert main(["collect", "postgres", "--dsn", DSN, "--once"]) == 2
    err = capsys.readouterr().err
    assert "PULSELINE_INGEST_KEY" in err and PASSWORD not in err


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://app:{PASSWORD}@127.0.0.1:{{port}}/shop?connect_timeout=2",
        f"host=127.0.0.1 port={{port}} user=app password={PASSWORD} connect_timeout=2",
        f"host=127.0.0.1 port=notaport password={PASSWORD}",
        f"postgresql://app:{PASSWORD}@127.0.0.1:{{port}}/shop?sslmode=bogus",
        f"password={PASSWORD} and garbage",
    ],
)
def test_a_server_that_cannot_be_reached_fails_once_without_showing_the_password(
    dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PULSELINE_INGEST_KEY", "pl_ingest_key")
    monkeypatch.setenv("PULSELINE_POSTGRES_DSN", dsn.format(port=free_port()))
    assert main(["collect", "postgres", "--once", "--dry-run"]) == 1
    said = capsys.readouterr()
    assert "cannot connect to PostgreSQL" in said.err
    assert "****" in said.err
    assert PASSWORD not in said.err + said.out
