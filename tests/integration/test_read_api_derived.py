"""The derived-table read endpoints on the real ClickHouse engine (chdb).

Rows go in through the sink's own row builders; every version is inserted alone and then
again in one block with the others (a replay the insert token cannot catch), so only
FINAL / LIMIT 1 BY keep them single.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.settings import StorageSettings
from storage import rows
from storage.api import create_app
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.rows import Source, Table

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
KEY_1, KEY_2 = new_key(Scope.READ), new_key(Scope.READ)
EVENT_ID = "0b6f2a57-3f5a-4d1e-9a43-2c2f1f4d8e01"


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def incident(project: int, id_: str, version: int, **over: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "project_id": project,
        "kind": "error_spike",
        "severity": "warning",
        "state": "open",
        "dedup_key": f"k-{id_}",
        "title": f"incident {id_}",
        "explanation": "why",
        "links": {},
        "opened_at": ago(days=1),
        "updated_at": ago(hours=20 - version),
        "version": version,
        **over,
    }


def run(project: int, run_id: str, status: str, version: int, **over: Any) -> dict[str, Any]:
    return {
        "project_id": project,
        "monitor_id": f"m{project}",
        "monitor_slug": "nightly",
        "run_id": run_id,
        "started_at": ago(days=1),
        "finished_at": None if status in ("running", "lost") else ago(days=1, seconds=-1),
        "duration_ms": None,
        "status": status,
        "version": version,
        **over,
    }


def data(project: int) -> dict[Table, list[dict[str, Any]]]:
    """Project 1 gets the full story; project 2 one row per table with its own ids."""
    p = project
    base: dict[Table, list[dict[str, Any]]] = {
        rows.INCIDENTS: [incident(p, f"inc-{p}", 1), incident(p, f"inc-{p}", 2, state="acked")],
        rows.MONITOR_STATES: [
            {
                "project_id": p,
                "monitor_id": f"m{p}",
                "monitor_slug": "nightly",
                "state": state,
                "last_ping_at": ago(hours=1),
                "next_expected_at": ago(hours=-23),
                "version": v,
            }
            for v, state in ((1, "new"), (2, "up"))
        ],
        rows.RUNS: [run(p, f"r{p}", "running", 1), run(p, f"r{p}", "ok", 2, duration_ms=1000)],
        rows.ISSUES: [
            issue(p, f"fp{p}", 1, count=1),
            issue(p, f"fp{p}", 2, count=5),
        ],
        rows.SESSIONS: [session(p, f"s{p}", 1, False), session(p, f"s{p}", 2, True)],
        rows.DELIVERIES: [delivery(p, 1, "retrying"), delivery(p, 2, "delivered")],
        rows.ANOMALIES: [
            {
                "project_id": p,
                "series": f"{p}|check_in.duration|nightly",
                "rule": "duration",
                "value": 90.0,
                "score": 4.5,
                "explanation": "4.5 sigma above the mean",
                "at": ago(hours=2),
                "event_id": f"ev-{p}",
            }
        ],
    }
    if project != 1:
        return base
    base[rows.INCIDENTS] += [
        incident(1, "inc-miss", 1, kind="monitor_missed", links={"monitor_id": "m1"}),
        incident(1, "inc-late", 1, kind="monitor_late", monitor_id="m1"),
    ]
    base[rows.RUNS] += [
        run(1, "r-fail", "fail", 1, duration_ms=3000, exit_code=2, output_tail="boom"),
        run(1, "r-lost", "lost", 1, started_at=ago(days=2)),
        run(1, "r-old", "ok", 1, started_at=ago(days=40), finished_at=ago(days=40)),
    ]
    base[rows.ISSUES] += [issue(1, "fp-old", 1, count=9, status="resolved", last_seen=ago(days=3))]
    base[rows.ERROR_GROUPS] = [
        {
            "event_id": EVENT_ID,
            "project_id": 1,
            "fingerprint": "fp1",
            "timestamp": ago(hours=1),
            "rule": "stack",
        }
    ]
    base[rows.EVENTS] = [
        {
            "event_id": EVENT_ID,
            "project_id": 1,
            "kind": "error",
            "timestamp": ago(hours=1),
            "received_at": ago(hours=1),
            "attributes": {"message": "KeyError"},
        }
    ]
    base[rows.STATS_SNAPSHOTS] = [
        {
            "project_id": 1,
            "family": "check_in.duration",
            "name": "nightly",
            "count": c,
            "mean": 2.0,
            "variance": 1.0,
            "stddev": 1.0,
            "min": 1.0,
            "max": 3.0,
            "p50": 2.0,
            "p95": 3.0,
            "at": ago(minutes=10 - c),
            "version": c,
        }
        for c in (2, 3)
    ]
    return base


def issue(project: int, fp: str, version: int, **over: Any) -> dict[str, Any]:
    return {
        "project_id": project,
        "fingerprint": fp,
        "title": f"KeyError {fp}",
        "culprit": "app.views",
        "level": "error",
        "status": "unresolved",
        "first_seen": ago(days=5),
        "last_seen": ago(hours=1),
        "count": 1,
        "users": 1,
        "first_release": "1.0",
        "last_release": "1.1",
        "rule": "stack",
        "version": version,
        **over,
    }


def session(project: int, sid: str, version: int, closed: bool) -> dict[str, Any]:
    return {
        "session_id": sid,
        "project_id": project,
        "distinct_id": "u1",
        "started_at": ago(hours=2),
        "last_seen": ago(hours=2, minutes=-version),
        "entry_page": "/",
        "exit_page": "/pricing",
        "pageviews": version,
        "events": 0,
        "duration_s": 60.0 * version,
        "bounce": False,
        "referrer": None,
        "utm_source": None,
        "browser": "Firefox",
        "os": "Linux",
        "device_type": "desktop",
        "version": version,
        "closed": closed,
    }


def delivery(project: int, attempt: int, status: str) -> dict[str, Any]:
    return {
        "delivery_id": f"d{project}",
        "incident_id": f"inc-{project}",
        "incident_version": 1,
        "state": "open",
        "dedup_key": f"k-inc-{project}",
        "project_id": project,
        "channel_id": "c1",
        "channel_type": "webhook",
        "attempt": attempt,
        "status": status,
        "http_status": 500 if status == "retrying" else 200,
        "at": ago(hours=3, seconds=-attempt),
        "incident": {},
    }


def insert(engine: Engine, table: Table, docs: list[dict[str, Any]]) -> None:
    built = [rows.decode(table, orjson.dumps(d), Source("t", 0, i)) for i, d in enumerate(docs)]
    engine.call(
        engine.client.insert,
        f"{engine.database}.{table.name}",
        built,
        column_names=list(table.columns),
    )


def load(engine: Engine) -> None:
    for table in rows.DERIVED.values():  # keep the replayed copies unmerged: FINAL must hide them
        engine.call(engine.client.command, f"SYSTEM STOP MERGES {engine.database}.{table.name}")
    for project in (1, 2):
        for table, docs in data(project).items():
            for doc in docs:
                insert(engine, table, [doc])
            insert(engine, table, docs)  # the replay: same versions, one new block
        monitor = {"data": {"id": f"m{project}", "project_id": project, "name": "Nightly"}}
        row = rows.decode(
            rows.CONTROL_ENTITIES,
            orjson.dumps({**monitor, "data": {**monitor["data"], "schedule": "0 3 * * *"}}),
            Source("control", 0, project, key=f"monitor:m{project}".encode()),
        )
        engine.call(
            engine.client.insert,
            f"{engine.database}.control_entities",
            [row],
            column_names=list(rows.CONTROL_ENTITIES.columns),
        )


@pytest.fixture
def engine(storage_env: dict[str, str]) -> Engine:
    settings = StorageSettings.from_env(storage_env)
    engine = Engine.open(settings)
    migrate(engine)
    load(engine)
    return engine


@asynccontextmanager
async def api(engine: Engine, env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    keyring = StaticKeyRing()
    keyring.add(KEY_1, ApiKey(1, Scope.READ))
    keyring.add(KEY_2, ApiKey(2, Scope.READ))
    app = create_app(StorageSettings.from_env(env), engine, keyring, StorageMetrics())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://read") as client:
        yield client


def get(engine: Engine, env: dict[str, str], path: str, key: str = KEY_1, **params: Any) -> Any:
    async def call() -> httpx.Response:
        async with api(engine, env) as client:
            return await client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})

    return asyncio.run(call())


def ids(body: dict[str, Any], field: str) -> list[Any]:
    return [row[field] for row in body["data"]]


def test_issues_list_by_recency_or_count_filter_by_status_and_page(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    body = get(engine, storage_env, "/v1/issues").json()
    assert ids(body, "fingerprint") == ["fp1", "fp-old"]
    assert body["data"][0]["count"] == 5 and body["next_cursor"] is None
    assert ids(get(engine, storage_env, "/v1/issues", sort="count").json(), "count") == [9, 5]
    resolved = get(engine, storage_env, "/v1/issues", status="resolved").json()
    assert ids(resolved, "fingerprint") == ["fp-old"]
    first = get(engine, storage_env, "/v1/issues", limit=1).json()
    assert ids(first, "fingerprint") == ["fp1"] and first["next_cursor"]
    second = get(engine, storage_env, "/v1/issues", limit=1, cursor=first["next_cursor"]).json()
    assert ids(second, "fingerprint") == ["fp-old"]


def test_an_issue_comes_with_its_latest_error_event(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    body = get(engine, storage_env, "/v1/issues/fp1").json()
    assert body["count"] == 5 and body["version"] == 2
    assert body["latest_event"]["event_id"] == EVENT_ID
    assert body["latest_event"]["attributes"] == {"message": "KeyError"}
    assert get(engine, storage_env, "/v1/issues/fp-old").json()["latest_event"] is None


def test_incidents_list_newest_version_once_and_filter_by_state_and_kind(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    body = get(engine, storage_env, "/v1/incidents").json()
    assert sorted(ids(body, "id")) == ["inc-1", "inc-late", "inc-miss"]
    acked = get(engine, storage_env, "/v1/incidents", state="acked").json()
    assert ids(acked, "id") == ["inc-1"] and acked["data"][0]["version"] == 2
    missed = get(engine, storage_env, "/v1/incidents", kind="monitor_missed").json()
    assert ids(missed, "id") == ["inc-miss"]
    assert missed["data"][0]["links"] == {"monitor_id": "m1"}
    one = get(engine, storage_env, "/v1/incidents/inc-1").json()
    assert (one["state"], one["version"], one["resolve_reason"]) == ("acked", 2, None)


def test_monitors_show_state_and_control_plane_name(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    body = get(engine, storage_env, "/v1/monitors").json()
    assert len(body["data"]) == 1
    m = body["data"][0]
    assert (m["monitor_id"], m["name"], m["state"], m["schedule"]) == (
        "m1",
        "Nightly",
        "up",
        "0 3 * * *",
    )
    assert m["next_expected_at"].endswith("Z")
    assert get(engine, storage_env, "/v1/monitors", state="down").json()["data"] == []


def test_runs_show_each_run_once_in_its_newest_version(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    body = get(engine, storage_env, "/v1/monitors/m1/runs").json()
    by_id = {r["run_id"]: r for r in body["data"]}
    assert sorted(by_id) == ["r-fail", "r-lost", "r-old", "r1"]
    assert (by_id["r1"]["status"], by_id["r1"]["duration_ms"]) == ("ok", 1000)
    assert (by_id["r-fail"]["exit_code"], by_id["r-fail"]["output_tail"]) == (2, "boom")
    assert ids(body, "run_id")[-1] == "r-old"


def test_health_reports_uptime_percentiles_and_score(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    body = get(engine, storage_env, "/v1/monitors/m1/health").json()
    assert body["uptime_pct"] == {"7d": 33.33, "30d": 33.33, "90d": 50.0}
    assert body["counts_7d"] == {"failures": 1, "missed": 2, "late": 1, "on_time_successes": 0}
    assert body["health_score"] == 100 - 5 - 20 - 3
    assert 1000 <= body["duration_ms"]["p50"] <= body["duration_ms"]["p99"] <= 3000


def test_sessions_deliveries_and_anomalies_list_once_each(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    sessions = get(engine, storage_env, "/v1/sessions").json()["data"]
    assert [(s["session_id"], s["closed"], s["pageviews"]) for s in sessions] == [("s1", True, 2)]
    deliveries = get(engine, storage_env, "/v1/alerts/deliveries").json()["data"]
    assert [(d["attempt"], d["status"]) for d in deliveries] == [(2, "delivered"), (1, "retrying")]
    anomalies = get(engine, storage_env, "/v1/anomalies", family="check_in.duration").json()
    assert [(a["name"], a["score"]) for a in anomalies["data"]] == [("nightly", 4.5)]


def test_the_replayed_versions_are_stored_but_never_shown_twice(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    stored = engine.call(
        engine.client.query, f"SELECT count() FROM {engine.database}.issues WHERE project_id = 1"
    ).result_rows[0][0]
    # Three one-row parts, then the replayed block (which collapses within itself to 2 rows):
    # five stored rows for two issues, so only FINAL keeps the list at two.
    assert stored == 5
    assert len(get(engine, storage_env, "/v1/issues").json()["data"]) == 2
    snapshot = engine.call(
        engine.client.query,
        f"SELECT count, version FROM {engine.database}.stats_snapshots FINAL",
    ).result_rows
    assert snapshot == [(3, 3)]


NEW_LISTS = [
    "/v1/issues",
    "/v1/incidents",
    "/v1/monitors",
    "/v1/sessions",
    "/v1/alerts/deliveries",
    "/v1/anomalies",
]
PROJECT_1_IDS = [
    "/v1/issues/fp1",
    "/v1/incidents/inc-1",
    "/v1/monitors/m1/runs",
    "/v1/monitors/m1/health",
]


def test_another_projects_key_sees_none_of_it(engine: Engine, storage_env: dict[str, str]) -> None:
    for path in NEW_LISTS:
        body = get(engine, storage_env, path, key=KEY_2).json()
        assert body["data"], path
        assert {r["project_id"] for r in body["data"] if "project_id" in r} <= {2}, path
        text = orjson.dumps(body).decode()
        assert "fp1" not in text and "inc-1" not in text and '"m1"' not in text, path
    for path in PROJECT_1_IDS:
        response = get(engine, storage_env, path, key=KEY_2)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/issues", {"status": "bogus"}),
        ("/v1/issues", {"sort": "title"}),
        ("/v1/issues", {"limit": 0}),
        ("/v1/issues", {"cursor": "not-a-cursor"}),
        ("/v1/incidents", {"kind": "meteor"}),
        ("/v1/monitors", {"state": "sleepy"}),
        ("/v1/sessions", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}),
        ("/v1/alerts/deliveries", {"limit": 100000}),
        ("/v1/anomalies", {"since": "yesterday"}),
    ],
)
def test_bad_parameters_are_400(
    engine: Engine, storage_env: dict[str, str], path: str, params: dict[str, Any]
) -> None:
    response = get(engine, storage_env, path, **params)
    assert response.status_code == 400, response.text
