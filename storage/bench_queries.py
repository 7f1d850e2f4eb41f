"""``pulseline bench queries``: the dashboard's queries on synthetic history, p50/p95 each.

A private embedded ClickHouse is filled inside the engine (``storage.bench_synthetic``:
events through the landing table and its views, plus derived rows), merged, then every
query the dashboard and read API run is timed ``repeats`` times for project 1 (80% of
the rows) over the default range of its endpoint (24 hours for analytics) and over the
whole history (``days``). The SQL is the read API's own, from ``storage.analytics_queries``
and ``storage.derived_queries``, with its ``QUERY_SETTINGS``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pulseline.bench_gateway import percentiles
from pulseline.settings import StorageSettings
from storage import analytics_queries as aq
from storage import bench_synthetic as synthetic
from storage import derived_queries as dq
from storage import queries
from storage.client import Engine
from storage.migrate import migrate

CHUNK = 1_000_000
PROJECT = 1


@dataclass(frozen=True)
class QueryProfile:
    events: int = 10_000_000
    days: int = 30
    repeats: int = 20
    target_p95_ms: float = 150.0


def cases(db: str, end: datetime, days: int, event_id: UUID) -> list[tuple[str, aq.Sql]]:
    """(name, query) for every dashboard read, over 24 hours and over the whole history;
    ``event_id`` is one of project 1's events, for the event detail."""
    p = PROJECT
    out: list[tuple[str, aq.Sql]] = []
    for label, since in (("24h", end - timedelta(days=1)), (f"{days}d", end - timedelta(days))):
        step: aq.Interval = "hour" if label == "24h" else "day"
        out += [
            (f"web.pageviews[{label}]", aq.pageview_series(db, p, since, end, step)),
            (f"web.sessions[{label}]", aq.session_series(db, p, since, end, step)),
            (f"web.pages[{label}]", aq.breakdown(db, p, since, end, "page", 10)),
            (f"web.referrers[{label}]", aq.breakdown(db, p, since, end, "referrer", 10)),
            (f"web.devices[{label}]", aq.breakdown(db, p, since, end, "device", 10)),
            (
                f"web.funnel[{label}]",
                aq.funnel(db, p, since, end, ["/p/1", "signup", "checkout"], 3600),
            ),
            (f"web.retention[{label}]", aq.retention(db, p, since, end)),
            (f"perf.vitals[{label}]", aq.web_vitals(db, p, since, end, 50)),
            (f"perf.routes[{label}]", aq.routes(db, p, since, end, 20, "requests")),
            (f"perf.slowest[{label}]", aq.routes(db, p, since, end, 10, "p95")),
            (f"metrics.series[{label}]", aq.metric_series(db, p, since, end, step, "db.m3")),
        ]
    out.append(("web.live", aq.live_visitors(db, p, end)))
    out.append(("events.detail", queries.event_by_id(db, p, event_id)))
    out += [
        (
            "issues.list",
            dq.issues(db, p, dq.Page(dq.ISSUE_SORTS["last_seen"], 50), None, "unresolved"),
        ),
        ("incidents.list", dq.incidents(db, p, dq.Page(dq.INCIDENT_PAGE, 50), None, "open", None)),
        ("monitors.list", dq.monitors(db, p, dq.Page(dq.MONITOR_PAGE, 50), None, None)),
        ("monitor.runs", dq.runs(db, p, "m1", dq.Page(dq.RUN_PAGE, 50), None)),
        ("monitor.health", dq.run_health(db, p, "m1", end)),
        (
            "anomalies.list",
            dq.anomalies(db, p, dq.Page(dq.ANOMALY_PAGE, 50), None, end - timedelta(7), end, None),
        ),
    ]
    return out


def _fill(
    engine: Engine, profile: QueryProfile, end: datetime, say: Callable[[str], None]
) -> float:
    db = engine.database
    started = time.perf_counter()
    for first in range(0, profile.events, CHUNK):
        count = min(CHUNK, profile.events - first)
        engine.client.command(
            synthetic.events_sql(db, first, count, profile.events, end, profile.days)
        )
        say(
            f"generated {first + count:,} / {profile.events:,} events "
            f"({time.perf_counter() - started:.0f} s)"
        )
    engine.client.command(synthetic.sessions_sql(db, profile.events // 10, end, profile.days))
    for statement in synthetic.derived_sql(db, end, profile.days):
        engine.client.command(statement)
    return time.perf_counter() - started


def _merge(engine: Engine) -> float:
    """Merge what the inserts left, as a quiet server would have by the time people read."""
    started = time.perf_counter()
    names = engine.client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
        parameters={"db": engine.database},
    ).result_rows
    for (name,) in names:
        engine.client.command(f"OPTIMIZE TABLE {engine.database}.{name} FINAL")
    return time.perf_counter() - started


def run(profile: QueryProfile, say: Callable[[str], None] = print) -> dict[str, Any]:
    end = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="pulseline-querybench-") as data:
        engine = Engine.open(StorageSettings.from_env({}, clickhouse_url=f"chdb://{data}"))
        try:
            migrate(engine)
            fill_s = _fill(engine, profile, end, say)
            merge_s = _merge(engine)
            say(f"merged in {merge_s:.0f} s; timing {profile.repeats} runs of each query")
            db = engine.database
            stored = engine.client.query(f"SELECT count() FROM {db}.events").result_rows
            if stored[0][0] != profile.events:
                raise RuntimeError(f"generated {stored[0][0]} events, expected {profile.events}")
            middle = engine.client.query(
                f"SELECT event_id FROM {db}.events WHERE project_id = {PROJECT} "
                f"AND _offset >= {profile.events // 2} ORDER BY _offset LIMIT 1"
            ).result_rows[0][0]
            timed = {}
            for name, (sql, params) in cases(db, end, profile.days, middle):
                samples = []
                for _ in range(profile.repeats):
                    t0 = time.perf_counter()
                    engine.client.query(sql, parameters=params, settings=aq.QUERY_SETTINGS)
                    samples.append((time.perf_counter() - t0) * 1000)
                q = timed[name] = percentiles(samples)  # ms
                say(f"{name:24} p50 {q['p50']:8.1f} ms   p95 {q['p95']:8.1f} ms")
        finally:
            engine.close()
    over = sorted(n for n, q in timed.items() if q["p95"] > profile.target_p95_ms)
    return {
        "suite": "queries",
        "profile": asdict(profile),
        "generate_s": round(fill_s, 1),
        "merge_s": round(merge_s, 1),
        "queries": timed,
        "over_target": over,
        "worst_p95_ms": max(q["p95"] for q in timed.values()),
    }


if __name__ == "__main__":
    import json
    from pathlib import Path

    count = int(sys.argv[1]) if len(sys.argv) > 1 else QueryProfile.events
    figures = run(QueryProfile(events=count), say=lambda line: print(line, flush=True))
    text = json.dumps(figures, indent=2)
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(text)
    print(text)
