"""``pulseline collect postgres``: poll PostgreSQL statistics, send them as metric events.

Each poll reads pg_stat_database, pg_stat_activity, pg_stat_statements (top N by total
time), replication lag and database and table sizes, and posts the metrics to the
gateway's ``/v1/events``. Counters become rates from the second poll on. Passwords (of
the DSN, ``PGPASSWORD``) and the ingest key are masked in every message and tag.
Metric names and tags: docs/POSTGRES_COLLECTOR.md.

Exit codes: 0 stopped by Ctrl-C, or ``--once`` read and sent everything; 1 the server
could not be read, events were lost or the key was refused; 2 a usage error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from pulseline.collectors.interval import format_interval, parse_interval
from pulseline.collectors.pg_metrics import PostgresMetrics
from pulseline.collectors.redact import Redactor, redact_dsn
from pulseline.collectors.sender import DEFAULT_BATCH, SendReport
from pulseline.collectors.settings import CollectSettings
from pulseline.commands.types import SubParsers
from pulseline.families import MAX_SHORT, MAX_TAGS
from pulseline.table import format_table


def interval_arg(text: str) -> float:
    try:
        return parse_interval(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def count_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def tag_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or len(key) > MAX_SHORT or len(value) > MAX_SHORT:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (each up to {MAX_SHORT} chars)")
    return key.strip(), value.strip()


def register(sub: SubParsers) -> None:
    parser = sub.add_parser("collect", help="poll a system and send its metrics to the gateway")
    what = parser.add_subparsers(dest="collect_what", required=True, metavar="SYSTEM")
    pg = what.add_parser(
        "postgres",
        help="PostgreSQL statistics as metric events",
        description="Poll PostgreSQL and send its statistics as metric events "
        "(see docs/POSTGRES_COLLECTOR.md).",
    )
    pg.add_argument(
        "--dsn",
        help="libpq DSN or URI (default: $PULSELINE_POSTGRES_DSN, else libpq's PG* variables)",
    )
    pg.add_argument(
        "--interval",
        type=interval_arg,
        default=10.0,
        help="time between polls: 10s, 1m, 1h or plain seconds (default: 10s)",
    )
    pg.add_argument("--once", action="store_true", help="poll once (gauges only: no rates)")
    pg.add_argument(
        "--top-statements",
        type=count_arg,
        default=20,
        metavar="N",
        help="statements reported, by total time (default: 20; 0 = none)",
    )
    pg.add_argument(
        "--max-tables",
        type=count_arg,
        default=50,
        metavar="N",
        help="largest tables of the connected database reported (default: 50)",
    )
    pg.add_argument("--url", help="gateway base URL (default: $PULSELINE_URL or :8000)")
    pg.add_argument(
        "--ingest-key",
        help="API key of scope ingest (default: $PULSELINE_INGEST_KEY, which ps cannot show)",
    )
    pg.add_argument(
        "--tag",
        type=tag_arg,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tag on every metric; repeat for more",
    )
    pg.add_argument(
        "--batch-size", type=count_arg, default=DEFAULT_BATCH, help="events per request"
    )
    pg.add_argument(
        "--dry-run", action="store_true", help="print the metrics instead of sending them"
    )
    pg.set_defaults(handler=run_postgres)


class PrintSink:
    """``--dry-run``: a table on stdout instead of the gateway."""

    def send(self, events: Sequence[dict[str, Any]]) -> SendReport:
        rows = []
        for event in events:
            attrs = event["attributes"]
            tags = ",".join(f"{k}={v}" for k, v in attrs.get("tags", {}).items())
            rows.append([attrs["name"], f"{attrs['value']:.6g}", attrs["unit"], tags])
        print(format_table(("metric", "value", "unit", "tags"), rows), flush=True)
        return SendReport(accepted=len(events))

    def close(self) -> None:
        pass


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """A service manager's SIGTERM ends the loop as Ctrl-C does."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_postgres(args: argparse.Namespace) -> int:
    from pulseline.collectors.postgres import Collector, PostgresSource
    from pulseline.collectors.sender import IngestSender

    settings = CollectSettings.from_env()
    dsn = args.dsn if args.dsn is not None else settings.postgres_dsn.get_secret_value()
    key = args.ingest_key or settings.ingest_key.get_secret_value()
    url = args.url or settings.url
    redact = Redactor.for_dsn(dsn, key, os.environ.get("PGPASSWORD", ""))
    if len(args.tag) > MAX_TAGS - 5:
        print(f"pulseline collect postgres: at most {MAX_TAGS - 5} --tag", file=sys.stderr)
        return 2
    if not key and not args.dry_run:
        print(
            "pulseline collect postgres: no ingest key: set PULSELINE_INGEST_KEY "
            "(or --ingest-key); create one with "
            "'pulseline keys create --project P --scope ingest --name postgres'",
            file=sys.stderr,
        )
        return 2
    sink = PrintSink() if args.dry_run else IngestSender(url, key, batch_size=args.batch_size)
    source = PostgresSource(dsn, redact, max_tables=args.max_tables)
    collector = Collector(
        source, PostgresMetrics(args.top_statements, redact), sink, redact, tags=dict(args.tag)
    )
    target = "stdout" if args.dry_run else url.rstrip("/") + "/v1/events"
    every = "once" if args.once else f"every {format_interval(args.interval)}"
    shown = redact(redact_dsn(dsn)) or "libpq defaults (PG* variables)"
    print(
        f"pulseline collect postgres: {shown} {every} -> {target}"
        + ("" if args.once else " (Ctrl-C to stop)"),
        file=sys.stderr,
        flush=True,
    )
    with _sigterm_as_ctrl_c():
        return collector.run(args.interval, once=args.once)
