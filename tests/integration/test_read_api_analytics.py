"""Analytics, exports, actions and the live stream on the real engine (chdb) and broker.

Events and sessions go in through the sink's row builders, each list twice (a replay), so
every number below also proves that a replayed row is counted once.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.records.incidents import INCIDENT_SIGNALS
from pulseline.schemas import EventKind
from pulseline.settings import StorageSettings
from pulseline.topics import INGEST
from storage import rows
from storage.actions_api import KafkaPublisher, Publisher
from storage.api import create_app
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.rows import Source, Table
from tests.helpers import consume_all, produce

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
_monday = (NOW - timedelta(weeks=3)).date()
T0 = datetime(_monday.year, _monday.month, _monday.day, 10, tzinfo=UTC) - timedelta(
    days=_monday.weekday()
)
HOUR = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}
KEY_1, KEY_2 = new_key(Scope.READ), new_key(Scope.READ)


def at(**delta: float) -> str:
    return (T0 + timedelta(**delta)).isoformat()


def event(kind: str, who: str, when: str, project: int = 1, **attributes: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "project_id": project,
        "kind": kind,
        "timestamp": when,
        "received_at": when,
        "distinct_id": who,
        "attributes": attributes,
    }


def view(who: str, path: str, when: str, project: int = 1, **more: Any) -> dict[str, Any]:
    return event("pageview", who, when, project, url=f"https://shop.test{path}", path=path, **more)


def visit(sid: str, who: str, bounce: bool, duration: float, browser: str, version: int) -> Any:
    return {
        "project_id": 1,
        "session_id": sid,
        "distinct_id": who,
        "started_at": at(minutes=1),
        "last_seen": at(minutes=3),
        "entry_page": "/",
        "exit_page": "/",
        "pageviews": 1,
        "events": 0,
        "duration_s": duration,
        "bounce": bounce,
        "referrer": None,
        "utm_source": None,
        "browser": browser,
        "os": "Linux",
        "device_type": "desktop",
        "closed": version == 2,
        "version": version,
    }


def project_1() -> list[dict[str, Any]]:
    # The live window is relative to the clock when the rows are seeded, not when the
    # module was imported (a full run reaches this file minutes after collection).
    fresh = datetime.now(UTC).replace(microsecond=0)
    now = fresh.isoformat()
    return [
        # Funnel "/" -> "/pricing" -> signup within an hour: u1 all, u2 two, u3 and u4 one.
        view("u1", "/", at(), utm_source="news"),
        view("u1", "/pricing", at(minutes=1)),
        event("event", "u1", at(minutes=2), name="signup"),
        view("u2", "/", at(minutes=5)),
        view("u2", "/pricing", at(minutes=6)),
        view("u3", "/pricing", at(minutes=10)),
        view("u3", "/", at(minutes=11)),
        event("pageview", "u4", at(minutes=20), url="https://shop.test/?ref=x"),
        event("event", "u4", at(hours=2), name="signup"),
        # Retention: u1 back a week later, u2 two weeks later; u5 first seen in week 1.
        view("u1", "/", at(days=7)),
        view("u2", "/", at(days=14)),
        view("u5", "/", at(days=7, hours=1)),
        # Performance and metrics.
        *[
            event("web_vital", "u1", at(minutes=i), name="LCP", value=v, path="/")
            for i, v in enumerate((500, 100, 400, 200, 300))
        ],
        *[
            event(
                "transaction",
                "u1",
                at(minutes=i),
                route="GET /a",
                duration_ms=d,
                http_status=500 if d == 50 else 200,
            )
            for i, d in enumerate((10, 20, 30, 40, 50))
        ],
        *[
            event("transaction", "u1", at(minutes=i), name="GET /b", duration_ms=1000, status="ok")
            for i in range(2)
        ],
        *[
            event("metric", "", at(seconds=10 * i), name="queue.depth", value=v)
            for i, v in enumerate((1, 2, 3, 4))
        ],
        event("metric", "", at(minutes=1), name="queue.depth", value=10),
        # Live: two visitors in the last five minutes, one before.
        view("u9", "/", now),
        view("u10", "/", (fresh - timedelta(minutes=1)).isoformat()),
        view("u11", "/", (fresh - timedelta(minutes=10)).isoformat()),
    ]


def project_2() -> list[dict[str, Any]]:
    return [
        view("p2-user", "/secret", at(minutes=1), project=2),
        view("p2-user", "/secret", datetime.now(UTC).isoformat(), project=2),
        event("web_vital", "p2-user", at(minutes=1), 2, name="LCP", value=9999, path="/secret"),
        event("transaction", "p2-user", at(minutes=1), 2, route="GET /p2", duration_ms=7),
        event("metric", "", at(minutes=1), 2, name="queue.depth", value=999),
    ]


def insert(engine: Engine, table: Table, docs: list[dict[str, Any]]) -> None:
    built = [rows.decode(table, orjson.dumps(d), Source("t", 0, i)) for i, d in enumerate(docs)]
    engine.call(
        engine.client.insert,
        f"{engine.database}.{table.name}",
        built,
        column_names=list(table.columns),
    )


INCIDENT = {
    "id": "inc-1",
    "project_id": 1,
    "kind": "error_spike",
    "severity": "warning",
    "state": "open",
    "dedup_key": "spike:1:checkout",
    "title": "errors spiking",
    "explanation": "why",
    "links": {},
    "opened_at": at(),
    "updated_at": at(),
    "version": 1,
}
ISSUE = {
    "project_id": 1,
    "fingerprint": "fp1",
    "title": "KeyError",
    "culprit": "app",
    "level": "error",
    "status": "unresolved",
    "first_seen": at(),
    "last_seen": at(),
    "count": 3,
    "users": 1,
    "first_release": None,
    "last_release": None,
    "rule": "stack",
    "version": 1,
}


@pytest.fixture
def engine(storage_env: dict[str, str]) -> Engine:
    engine = Engine.open(StorageSettings.from_env(storage_env))
    migrate(engine)
    for docs in (project_1(), project_2()):
        insert(engine, rows.EVENTS, docs)
        insert(engine, rows.EVENTS, docs)  # the replay
    sessions = [
        visit("s1", "u1", False, 120.0, "Firefox", 1),
        visit("s2", "u2", True, 0.0, "Chrome", 1),
        visit("s3", "u3", False, 60.0, "Chrome", 1),
    ]
    insert(engine, rows.SESSIONS, sessions)
    insert(engine, rows.SESSIONS, [{**s, "version": 2, "closed": True} for s in sessions])
    insert(engine, rows.INCIDENTS, [INCIDENT])
    insert(engine, rows.ISSUES, [ISSUE])
    return engine


@asynccontextmanager
async def api(
    engine: Engine, env: dict[str, str], publisher: Publisher | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    keyring = StaticKeyRing()
    keyring.add(KEY_1, ApiKey(1, Scope.READ))
    keyring.add(KEY_2, ApiKey(2, Scope.READ))
    settings = StorageSettings.from_env(env)
    app = create_app(settings, engine, keyring, StorageMetrics(), publisher=publisher)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://read") as client:
        yield client


def get(engine: Engine, env: dict[str, str], path: str, key: str = KEY_1, **params: Any) -> Any:
    async def call() -> httpx.Response:
        async with api(engine, env) as client:
            return await client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})

    return asyncio.run(call())


def ok(engine: Engine, env: dict[str, str], path: str, **params: Any) -> Any:
    response = get(engine, env, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


def test_web_series_counts_views_visitors_sessions_bounce_and_duration(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    body = ok(engine, storage_env, "/v1/analytics/web/series", interval="hour", **HOUR)
    point = body["data"][0]
    assert len(body["data"]) == 1 and point["bucket"] == T0.isoformat().replace("+00:00", "Z")
    assert (point["pageviews"], point["visitors"], point["sessions"]) == (7, 4, 3)
    assert round(point["bounce_rate"], 2) == 33.33 and point["avg_duration_s"] == 60.0


def test_breakdowns_rank_pages_utm_and_browsers(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    pages = ok(engine, storage_env, "/v1/analytics/web/breakdown", by="page", **HOUR)["data"]
    assert [(r["value"], r["pageviews"], r["visitors"]) for r in pages] == [
        ("/", 4, 4),
        ("/pricing", 3, 3),
    ]
    utm = ok(engine, storage_env, "/v1/analytics/web/breakdown", by="utm_source", **HOUR)
    assert [(r["value"], r["pageviews"]) for r in utm["data"]] == [("", 6), ("news", 1)]
    browsers = ok(engine, storage_env, "/v1/analytics/web/breakdown", by="browser", **HOUR)
    assert [(r["value"], r["sessions"]) for r in browsers["data"]] == [
        ("Chrome", 2),
        ("Firefox", 1),
    ]


def test_funnel_counts_ordered_steps_within_the_window(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    since, until = at(minutes=-1), at(hours=3)
    body = ok(
        engine,
        storage_env,
        "/v1/analytics/web/funnel",
        steps=["/", "/pricing", "signup"],
        window_s=3600,
        since=since,
        until=until,
    )
    assert [(s["visitors"], s["conversion_pct"]) for s in body["steps"]] == [
        (4, 100.0),
        (2, 50.0),
        (1, 25.0),
    ]


def test_retention_groups_visitors_by_first_week(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    body = ok(
        engine, storage_env, "/v1/analytics/web/retention", since=at(days=-1), until=at(days=20)
    )
    assert [(c["cohort"], c["size"], c["weeks"]) for c in body["data"]] == [
        (T0.date().isoformat(), 4, [4, 1, 1]),
        ((T0 + timedelta(days=7)).date().isoformat(), 1, [1]),
    ]


def test_live_visitors_are_those_of_the_last_five_minutes(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    assert ok(engine, storage_env, "/v1/analytics/web/live")["visitors"] == 2


def test_performance_reports_p75_vitals_and_route_latency(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    vitals = ok(engine, storage_env, "/v1/analytics/performance/vitals", **HOUR)["data"]
    assert vitals == [{"page": "/", "vital": "LCP", "p75": 400.0, "samples": 5}]
    routes = ok(engine, storage_env, "/v1/analytics/performance/routes", **HOUR)["data"]
    a, b = routes
    assert (a["route"], a["requests"], a["error_rate_pct"]) == ("GET /a", 5, 20.0)
    assert a["latency_ms"]["p50"] == 30.0 and a["throughput_rpm"] == round(5 / 60, 4)
    assert (b["route"], b["error_rate_pct"], b["latency_ms"]["p99"]) == ("GET /b", 0.0, 1000.0)
    slowest = ok(engine, storage_env, "/v1/analytics/performance/slowest", **HOUR)["data"]
    assert [r["route"] for r in slowest] == ["GET /b", "GET /a"]


def test_metric_series_has_percentiles_per_minute(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    body = ok(engine, storage_env, "/v1/analytics/metrics/series", name="queue.depth", **HOUR)
    first, second = body["data"]
    assert (first["count"], first["avg"], first["min"], first["max"]) == (4, 2.5, 1.0, 4.0)
    assert first["p50"] == 2.5 and (second["count"], second["max"]) == (1, 10.0)


ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/analytics/web/series", {}),
    ("/v1/analytics/web/breakdown", {"by": "page"}),
    ("/v1/analytics/web/breakdown", {"by": "browser"}),
    ("/v1/analytics/web/funnel", {"steps": ["/", "/checkout"]}),
    ("/v1/analytics/web/retention", {}),
    ("/v1/analytics/performance/vitals", {}),
    ("/v1/analytics/performance/routes", {}),
    ("/v1/analytics/performance/slowest", {}),
    ("/v1/analytics/metrics/series", {"name": "queue.depth", "interval": "hour"}),
    ("/v1/events", {"format": "ndjson"}),
    ("/v1/issues", {"format": "csv"}),
    ("/v1/incidents", {"format": "ndjson"}),
]


def test_another_projects_key_sees_none_of_project_1(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    week = {"since": at(days=-1), "until": at(days=20)}
    for path, params in ENDPOINTS:
        response = get(engine, storage_env, path, key=KEY_2, **week, **params)
        assert response.status_code == 200, (path, response.text)
        for secret in ("/pricing", "GET /a", '"u1"', "fp1", "inc-1", "Chrome", '"p75":400'):
            assert secret not in response.text, (path, secret)
    funnel = get(engine, storage_env, "/v1/analytics/web/funnel", KEY_2, steps=["/", "/x"])
    assert funnel.json()["steps"][0]["visitors"] == 0
    assert get(engine, storage_env, "/v1/analytics/web/live", KEY_2).json()["visitors"] == 1
    vitals = get(engine, storage_env, "/v1/analytics/performance/vitals", KEY_2, **week).json()
    assert [v["p75"] for v in vitals["data"]] == [9999.0]

    async def post(path: str) -> int:
        async with api(engine, storage_env, MemoryPublisher()) as client:
            headers = {"Authorization": f"Bearer {KEY_2}"}
            return (await client.post(path, headers=headers)).status_code

    for path in ("/v1/incidents/inc-1/ack", "/v1/issues/fp1/resolve"):
        assert asyncio.run(post(path)) == 404, path


class MemoryPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append((topic, key, value))


def test_exports_stream_every_row_as_csv_or_ndjson(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    week = {"since": at(days=-1), "until": at(days=20)}
    ndjson = get(engine, storage_env, "/v1/events", kind="transaction", format="ndjson", **week)
    lines = [orjson.loads(line) for line in ndjson.text.splitlines()]
    assert ndjson.headers["content-type"] == "application/x-ndjson" and len(lines) == 7
    assert {r["attributes"].get("route") or r["attributes"]["name"] for r in lines} == {
        "GET /a",
        "GET /b",
    }
    csv = get(engine, storage_env, "/v1/issues", format="csv").text.splitlines()
    assert csv[0].startswith("project_id,fingerprint") and csv[1].startswith("1,fp1,")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/analytics/web/series", {"interval": "minute", "since": at(days=-10)}),
        ("/v1/analytics/web/series", {"interval": "week"}),
        ("/v1/analytics/web/breakdown", {"by": "shoe_size"}),
        ("/v1/analytics/web/funnel", {"steps": ["/"]}),
        ("/v1/analytics/web/funnel", {"steps": ["/", "/a"], "window_s": 0}),
        ("/v1/analytics/performance/routes", {"limit": 100000}),
        ("/v1/analytics/metrics/series", {}),
        ("/v1/events", {"format": "xml"}),
    ],
)
def test_bad_parameters_are_400(
    engine: Engine, storage_env: dict[str, str], path: str, params: dict[str, Any]
) -> None:
    response = get(engine, storage_env, path, **params)
    assert response.status_code == 400, response.text


def test_ack_reaches_kafka_keyed_by_the_incidents_dedup_key(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    settings = StorageSettings.from_env(storage_env)

    async def scenario() -> list[Any]:
        publisher = KafkaPublisher(settings)
        await publisher.start()
        try:
            async with api(engine, storage_env, publisher) as client:
                response = await client.post(
                    "/v1/incidents/inc-1/ack", headers={"Authorization": f"Bearer {KEY_1}"}
                )
                assert response.status_code == 202, response.text
        finally:
            await publisher.stop()
        topic = INCIDENT_SIGNALS.physical(settings.topic_prefix)
        return await consume_all(settings.bootstrap, topic, expect=1, timeout_s=15)

    (record,) = asyncio.run(scenario())
    value = orjson.loads(record.value)
    assert record.key == b"spike:1:checkout"
    assert (value["action"], value["dedup_key"], value["project_id"]) == (
        "ack",
        "spike:1:checkout",
        1,
    )


def test_actions_answer_503_with_retry_after_when_kafka_is_down(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    down = StorageSettings.from_env({**storage_env, "PULSELINE_KAFKA_BOOTSTRAP": "127.0.0.1:1"})

    async def call() -> httpx.Response:
        async with api(engine, storage_env, KafkaPublisher(down, timeout_s=1)) as client:
            headers = {"Authorization": f"Bearer {KEY_1}"}
            return await client.post("/v1/issues/fp1/ignore", headers=headers)

    response = asyncio.run(call())
    assert response.status_code == 503 and response.headers["retry-after"] == "5"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_live_stream_delivers_an_event_sent_after_connecting(
    engine: Engine, storage_env: dict[str, str]
) -> None:
    settings = StorageSettings.from_env(storage_env)
    keyring = StaticKeyRing()
    keyring.add(KEY_1, ApiKey(1, Scope.READ))
    app = create_app(settings, engine, keyring, StorageMetrics())
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    mine, theirs = view("live-1", "/now", NOW.isoformat()), view("x", "/", NOW.isoformat(), 2)
    topic = INGEST[EventKind.PAGEVIEW].physical(settings.topic_prefix)

    async def scenario() -> dict[str, Any]:
        serving = asyncio.create_task(server.serve())
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                headers = {"Authorization": f"Bearer {KEY_1}"}
                async with client.stream("GET", "/v1/live", headers=headers) as response:
                    assert response.status_code == 200, await response.aread()
                    lines = response.aiter_lines()
                    assert await anext(lines) == ": connected"
                    await produce(
                        settings.bootstrap, topic, [orjson.dumps(d) for d in (theirs, mine)]
                    )
                    async with asyncio.timeout(20):
                        async for line in lines:
                            if line.startswith("data: "):
                                return dict(orjson.loads(line.removeprefix("data: ")))
            raise AssertionError("the stream ended")
        finally:
            server.should_exit = True
            await serving

    received = asyncio.run(scenario())
    assert (received["event_id"], received["project_id"]) == (mine["event_id"], 1)
