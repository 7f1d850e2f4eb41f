"""Tenant isolation gate: no route of the storage process shows project 1 to project 2.

The app is the one ``storage.service`` serves: the read API with the derived, analytics,
actions, live and dashboard routers and the admin router, keyed by the control-plane view.
Every route it serves is listed in ``TABLE``, ``STREAMS`` or ``EXEMPT``;
``test_every_served_route_has_an_isolation_case`` fails naming any route that is not, so a
new route cannot ship without an isolation case. Each case calls its route with project 1's
real ids (paths, filters, bodies) and project 2's keys, and requires:

- detail, action and admin routes: 404 ``not_found``, also for project 2's own path with a
  child id of project 1, and for a rule of project 2 pointing at project 1's channel or
  monitor; lists and aggregates: 200 without project 1's rows, ids, strings or counts;
- nothing written: no control-plane record, no Kafka record, project 1's entities unchanged;
- none of ``PROJECT_1_ONLY`` anywhere in the answer.

Each case has a positive control: project 1's own key gets 2xx and sees what project 2 must
not see, and its writes land, so a route that answers nothing to everyone fails too.

Keys: project 2's read key and its project-bound admin key must both see nothing of project
1. An admin key without a project spans every project by design (``ApiKey.project_id`` None):
it is no tenant's key, so the check runs the other way round: the read API and the dashboard
refuse it (403, redirect to sign-in), and read and ingest keys get 403 on every admin route.
``/status/{slug}`` is public by design: project 2's page shows nothing of project 1.
``/v1/live`` needs the broker and has its own test. The ingest gateway only accepts writes.

Data: the derived-table story of ``test_read_api_derived`` and the analytics events of
``test_read_api_analytics`` for both projects, seeded once per module into a database of the
session's embedded engine (``chdb_dir``: the function-scoped ``storage_env`` would cost a
database per case), served by one app whose in-memory control plane is reset before each
call. The live test runs on ``storage_env`` and its broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path

from pulseline.control.entities import ApiKeyRecord, Entity, EntityType, Monitor, Project
from pulseline.control.service import ControlService
from pulseline.control.view import ControlView
from pulseline.keys import ApiKey, Scope, display_prefix, key_hash, new_key
from pulseline.records.incidents import INCIDENTS
from pulseline.schemas import EventKind
from pulseline.settings import StorageSettings
from pulseline.topics import INGEST
from storage import rows
from storage.admin_api import admin_router
from storage.api import create_app
from storage.client import Engine
from storage.dashboard.session import COOKIE
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from tests.helpers import produce, serving
from tests.integration.test_read_api_analytics import (
    T0,
    MemoryPublisher,
    project_1,
    project_2,
    view,
)
from tests.integration.test_read_api_derived import EVENT_ID, incident, insert, load
from tests.unit.test_admin_api import MemoryStore

pytestmark = pytest.mark.integration

READ_1, READ_2 = new_key(Scope.READ), new_key(Scope.READ)
ADMIN_1, ADMIN_2, ROOT = new_key(Scope.ADMIN), new_key(Scope.ADMIN), new_key(Scope.ADMIN)
INGEST_1 = new_key(Scope.INGEST)
KEYS = (
    ("key-read-1", READ_1, 1, Scope.READ),
    ("key-read-2", READ_2, 2, Scope.READ),
    ("key-admin-1", ADMIN_1, 1, Scope.ADMIN),
    ("key-admin-2", ADMIN_2, 2, Scope.ADMIN),
    ("key-root", ROOT, None, Scope.ADMIN),
    ("key-ingest-1", INGEST_1, 1, Scope.INGEST),
)
WHO = {
    READ_1: "project 1's read key",
    READ_2: "project 2's read key",
    ADMIN_1: "project 1's admin key",
    ADMIN_2: "project 2's admin key",
    ROOT: "the admin key without a project",
    INGEST_1: "project 1's ingest key",
    None: "no key",
}
P1_COUNT = 987654
P2_PAGEVIEWS = sum(d["kind"] == "pageview" for d in project_2())
WINDOW = {
    "since": (T0 - timedelta(days=1)).isoformat(),
    "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
}
# Strings only project 1's data holds; never an id a call sends (a 404 may echo those).
PROJECT_1_ONLY = (
    "Acme",
    "acme.example",
    "whsec-acme",
    "acme-ping-key",
    "KeyError fp1",
    "KeyError fp-old",
    "inc-miss",
    "inc-late",
    "r-fail",
    "boom",
    '"GET /a"',
)


# The world: ClickHouse seeded once per module, one app, its control plane reset per call.


@pytest.fixture(scope="module")
def seeded(chdb_dir: Path) -> tuple[StorageSettings, Engine]:
    settings = StorageSettings.from_env(
        {
            "PULSELINE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "PULSELINE_CLICKHOUSE_URL": f"chdb://{chdb_dir}",
            "PULSELINE_CLICKHOUSE_DATABASE": f"t_{uuid.uuid4().hex[:10]}",
        }
    )
    engine = Engine.open(settings)
    migrate(engine)
    load(engine)
    insert(engine, rows.EVENTS, project_1() + project_2())
    minute = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    counts = [(1, P1_COUNT), (2, 3)]
    insert(
        engine,
        rows.COUNTS,
        [
            {"project_id": p, "kind": "error", "minute": minute.isoformat(), "count": n}
            for p, n in counts
        ],
    )
    return settings, engine


class Current:
    """The app's key ring and directory: whichever view the store holds now, so one app
    serves every case and ``World.reset`` only swaps the view."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def lookup(self, raw: str) -> ApiKey | None:
        return self.store.view.lookup(raw)

    def get(self, kind: EntityType, entity_id: str | int) -> Entity | None:
        return self.store.view.get(kind, entity_id)

    def by_slug(self, kind: EntityType, slug: str, project_id: int | None = None) -> Entity | None:
        return self.store.view.by_slug(kind, slug, project_id)

    def monitors(self, project_id: int | None = None) -> list[Monitor]:
        return self.store.view.monitors(project_id)

    def project(self, project_id: int) -> Project | None:
        return self.store.view.project(project_id)


@dataclass
class World:
    app: FastAPI
    store: MemoryStore
    published: MemoryPublisher

    def reset(self) -> None:
        """Both projects as seeded; nothing written or published since."""
        self.store.view = ControlView()
        self.store.written.clear()
        self.published.sent.clear()
        asyncio.run(_control_plane(ControlService(self.store)))

    def state(self) -> tuple[int, int, str]:
        """Control-plane writes, Kafka records, and a digest of every entity."""
        return len(self.store.written), len(self.published.sent), self.store.view.fingerprint()


async def _control_plane(service: ControlService) -> None:
    for p, name in ((1, "Acme"), (2, "Beta")):
        slug, owner = name.lower(), {"project_id": p}
        project = {"id": p, "name": name, "slug": slug, "ping_key": f"{slug}-ping-key-0123456789"}
        monitor = {"id": f"m{p}", "name": f"{name} nightly", "slug": f"{slug}-nightly"}
        channel = {"id": f"c-{slug}", "name": f"{name} hook", "slug": f"{slug}-hook"}
        rule = {"id": f"rule-{slug}", "name": f"{name} page", "slug": f"{slug}-page"}
        hook = {"url": f"https://{slug}.example/hook"}
        await service.create(EntityType.PROJECT, project)
        await service.create(
            EntityType.MONITOR,
            {**owner, **monitor, "schedule": {"cron": "0 3 * * *"}, "tags": ["public"]},
        )
        await service.create(
            EntityType.CHANNEL,
            {**owner, **channel, "type": "webhook", "config": hook, "secret": f"whsec-{slug}"},
        )
        await service.create(
            EntityType.RULE, {**owner, **rule, "channels": [channel["id"]], "monitors": [f"m{p}"]}
        )
    for key_id, raw, project_id, scope in KEYS:
        record = ApiKeyRecord(
            id=key_id,
            project_id=project_id,
            scope=scope,
            name=key_id,
            prefix=display_prefix(raw),
            hash=key_hash(raw),
            created_at=datetime.now(UTC),
        )
        await service.store.put(record)


def build(settings: StorageSettings, engine: Engine) -> World:
    store = MemoryStore()
    admin = admin_router(ControlService(store))
    published = MemoryPublisher()
    app = create_app(settings, engine, Current(store), StorageMetrics(), admin, published)
    world = World(app, store, published)
    world.reset()
    return world


@pytest.fixture(scope="module")
def world(seeded: tuple[StorageSettings, Engine]) -> World:
    return build(*seeded)


# The table.


@dataclass(frozen=True)
class Call:
    """One request to a route; ``foreign``: made with project 2's keys, ``control``: with
    project 1's (a call aiming project 2's path at project 1's ids has no control)."""

    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    foreign: bool = True
    control: bool = True


@dataclass(frozen=True)
class Via:
    """How a route takes its key, project 1's key, project 2's keys, and keys refused
    outright whatever the ids (with their status)."""

    own: str | None
    foreign: tuple[str | None, ...]
    barred: tuple[tuple[str | None, int], ...]
    cookie: bool = False


BEARER = Via(READ_1, (READ_2, ADMIN_2), ((ROOT, 403), (INGEST_1, 403)))
COOKIE_KEY = Via(READ_1, (READ_2, ADMIN_2), ((ROOT, 303), (INGEST_1, 303)), cookie=True)
ADMIN = Via(ADMIN_1, (ADMIN_2,), ((READ_2, 403), (READ_1, 403), (INGEST_1, 403)))
PUBLIC = Via(None, (None,), ())

Seen = Callable[[httpx.Response], bool]


@dataclass(frozen=True)
class Case:
    """``seen``: project 1's data is in this answer. ``denied``: project 2's status,
    ``mine``: project 1's; ``leak``: a known leak, run as xfail(strict) with this reason."""

    via: Via
    calls: tuple[Call, ...]
    seen: Seen
    denied: int = 200
    mine: int = 200
    own: str | None = None
    leak: str | None = None


def answers(response: httpx.Response) -> bool:
    return response.is_success


def shows(*markers: str) -> Seen:
    return lambda r: r.is_success and any(m in r.text for m in markers)


def body(check: Callable[[Any], bool]) -> Seen:
    return lambda r: r.status_code == 200 and check(r.json())


def listing(path: str, seen: Seen, *variants: dict[str, Any], via: Via = BEARER) -> Case:
    return Case(via, tuple(Call(path, v) for v in ({}, *variants)), seen)


def analytics(path: str, seen: Callable[[Any], bool], **params: Any) -> Case:
    return Case(BEARER, (Call(f"/v1/analytics/{path}", {**WINDOW, **params}),), body(seen))


def detail(*paths: str, via: Via = BEARER) -> Case:
    return Case(via, tuple(Call(p) for p in paths), answers, denied=404)


def action(path: str) -> Case:
    return Case(BEARER, (Call(path),), answers, denied=404, mine=202)


def values(field: str, theirs: str) -> Callable[[Any], bool]:
    return lambda b: any(r[field] not in ("", theirs) for r in b["data"])


READ: dict[str, Case] = {
    "GET /v1/events": listing(
        "/v1/events", shows(EVENT_ID), {"format": "ndjson"}, {"kind": "error"}, WINDOW
    ),
    "GET /v1/events/{event_id}": detail(f"/v1/events/{EVENT_ID}"),
    "GET /v1/stats/counts": listing(
        "/v1/stats/counts", body(lambda b: any(r["count"] == P1_COUNT for r in b["data"]))
    ),
    "GET /v1/issues": listing(
        "/v1/issues",
        shows("fp1", "fp-old"),
        {"status": "resolved"},
        {"sort": "count"},
        {"format": "csv"},
    ),
    "GET /v1/issues/{fingerprint}": detail("/v1/issues/fp1", "/v1/issues/fp-old"),
    "GET /v1/incidents": listing(
        "/v1/incidents",
        shows("inc-1", "inc-miss"),
        {"state": "acked"},
        {"kind": "monitor_missed"},
        {"format": "ndjson"},
    ),
    "GET /v1/incidents/{incident_id}": detail("/v1/incidents/inc-1"),
    "GET /v1/monitors": listing("/v1/monitors", shows('"m1"'), {"state": "up"}),
    "GET /v1/monitors/{monitor_id}/runs": detail("/v1/monitors/m1/runs"),
    "GET /v1/monitors/{monitor_id}/health": detail("/v1/monitors/m1/health"),
    "GET /v1/sessions": listing("/v1/sessions", shows('"s1"')),
    "GET /v1/alerts/deliveries": listing(
        "/v1/alerts/deliveries", shows('"d1"'), {"incident_id": "inc-1"}
    ),
    "GET /v1/anomalies": listing("/v1/anomalies", shows('"ev-1"'), {"family": "check_in.duration"}),
    "GET /v1/analytics/web/series": analytics(
        "web/series", lambda b: sum(p["pageviews"] for p in b["data"]) > P2_PAGEVIEWS
    ),
    "GET /v1/analytics/web/breakdown": Case(
        BEARER,
        tuple(
            Call("/v1/analytics/web/breakdown", {**WINDOW, "by": by})
            for by in ("page", "utm_source")
        ),
        body(values("value", "/secret")),
    ),
    "GET /v1/analytics/web/funnel": analytics(
        "web/funnel", lambda b: b["steps"][0]["visitors"] > 0, steps=["/", "/pricing"]
    ),
    "GET /v1/analytics/web/retention": analytics(
        "web/retention", lambda b: sum(c["size"] for c in b["data"]) > 1
    ),
    "GET /v1/analytics/web/live": listing(
        "/v1/analytics/web/live", body(lambda b: b["visitors"] > 1)
    ),
    "GET /v1/analytics/performance/vitals": analytics(
        "performance/vitals", values("page", "/secret")
    ),
    "GET /v1/analytics/performance/routes": analytics(
        "performance/routes", values("route", "GET /p2")
    ),
    "GET /v1/analytics/performance/slowest": analytics(
        "performance/slowest", values("route", "GET /p2")
    ),
    "GET /v1/analytics/metrics/series": analytics(
        "metrics/series",
        lambda b: sum(p["count"] for p in b["data"]) > 1,
        name="queue.depth",
        interval="hour",
    ),
    "POST /v1/incidents/{incident_id}/ack": action("/v1/incidents/inc-1/ack"),
    "POST /v1/incidents/{incident_id}/resolve": action("/v1/incidents/inc-1/resolve"),
    "POST /v1/issues/{fingerprint}/resolve": action("/v1/issues/fp1/resolve"),
    "POST /v1/issues/{fingerprint}/ignore": action("/v1/issues/fp1/ignore"),
    "POST /v1/issues/{fingerprint}/unresolve": action("/v1/issues/fp-old/unresolve"),
}

DASHBOARD: dict[str, Case] = {
    "GET /dashboard/": listing("/dashboard/", shows("inc-miss"), via=COOKIE_KEY),
    "GET /dashboard/partials/health": listing(
        "/dashboard/partials/health", shows("<strong>2</strong> open incidents"), via=COOKIE_KEY
    ),
    "GET /dashboard/crons": listing(
        "/dashboard/crons", shows("/dashboard/crons/m1"), via=COOKIE_KEY
    ),
    "GET /dashboard/crons/{monitor_id}": Case(
        COOKIE_KEY,
        (Call("/dashboard/crons/m1"), Call("/dashboard/crons/m1", {"tz": "monitor"})),
        answers,
        denied=404,
    ),
    "GET /dashboard/issues": listing(
        "/dashboard/issues",
        shows("KeyError fp1", "KeyError fp-old"),
        {"status": "resolved"},
        via=COOKIE_KEY,
    ),
    "GET /dashboard/issues/{fingerprint}": detail("/dashboard/issues/fp1", via=COOKIE_KEY),
    "GET /dashboard/incidents": listing(
        "/dashboard/incidents", shows("inc-1", "inc-miss"), {"state": "open"}, via=COOKIE_KEY
    ),
    "GET /dashboard/incidents/{incident_id}": detail("/dashboard/incidents/inc-1", via=COOKIE_KEY),
    "GET /dashboard/analytics/tiles/{name}": Case(
        COOKIE_KEY,
        tuple(
            Call(f"/dashboard/analytics/tiles/{name}", {"range": "30d"})
            for name in ("pages", "sources")
        ),
        # Project 2's own sessions also end on /pricing: the top-pages filter link is 1's.
        shows("&amp;page=%2Fpricing", "news"),
    ),
    "GET /dashboard/performance/tiles/{name}": Case(
        COOKIE_KEY,
        (Call("/dashboard/performance/tiles/routes", {"range": "30d"}),),
        shows("GET /a", "GET /b"),
    ),
    "GET /status/{slug}": Case(
        PUBLIC,
        (Call("/status/beta", control=False), Call("/status/acme", foreign=False)),
        shows("Acme nightly"),
    ),
}

P = "/v1/admin/projects"
# Project 1 by id and by slug, then project 2's own path (a child id of project 1 in it).
MINE, THEIRS = (f"{P}/1", f"{P}/acme"), f"{P}/2"


def admin(
    paths: tuple[str, ...],
    mine: int = 200,
    payload: dict[str, Any] | None = None,
    crossed: tuple[Call, ...] = (),
    seen: Seen = answers,
) -> Case:
    calls = tuple(Call(p, body=payload, control=not p.startswith(THEIRS)) for p in paths)
    return Case(ADMIN, calls + crossed, seen, denied=404, mine=mine)


def owned(kind: str, ids: tuple[str, str], new: dict[str, Any]) -> dict[str, Case]:
    """The routes of one kind a project owns, aimed at project 1's entity by id and slug."""
    one = "/v1/admin/projects/{project}/" + kind + "/{ref}"
    refs = tuple(f"{base}/{kind}/{ref}" for base in (*MINE, THEIRS) for ref in ids)
    patch, create = {"name": "Hijacked"}, tuple(f"{base}/{kind}" for base in MINE)
    crossed: dict[str, tuple[Call, ...]] = {"create": (), "patch": ()}
    if kind == "rules":
        steal = ({"channels": ["c-acme"]}, {"channels": ["c-beta"], "monitors": ["m1"]})
        crossed = {
            "create": tuple(
                Call(f"{THEIRS}/rules", body={**new, **s}, control=False) for s in steal
            ),
            "patch": tuple(Call(f"{THEIRS}/rules/rule-beta", body=s, control=False) for s in steal),
        }
    return {
        f"GET {P}/{{project}}/{kind}": admin(create, seen=shows(f'"{ids[0]}"')),
        f"POST {P}/{{project}}/{kind}": admin(create, 201, new, crossed["create"]),
        f"GET {one}": admin(refs),
        f"PATCH {one}": admin(refs, 200, patch, crossed["patch"]),
        f"DELETE {one}": admin(refs, 204),
    }


KEY_PATHS = tuple(f"{base}/keys/key-read-1" for base in (*MINE, THEIRS))
ADMIN_ROUTES: dict[str, Case] = {
    f"GET {P}": Case(ADMIN, (Call(P),), body(lambda b: any(p["id"] == 1 for p in b["data"]))),
    f"POST {P}": Case(
        ADMIN,
        (Call(P, body={"name": "Gamma", "slug": "gamma"}),),
        answers,
        denied=403,
        mine=201,
        own=ROOT,
    ),
    f"GET {P}/{{project}}": admin(MINE),
    f"PATCH {P}/{{project}}": admin(MINE, 200, {"name": "Hijacked"}),
    f"DELETE {P}/{{project}}": admin(MINE, 204),
    f"GET {P}/{{project}}/keys": admin(
        tuple(f"{b}/keys" for b in MINE), seen=shows('"key-read-1"')
    ),
    f"POST {P}/{{project}}/keys": admin(
        tuple(f"{b}/keys" for b in MINE), 201, {"scope": "read", "name": "stolen"}
    ),
    f"GET {P}/{{project}}/keys/{{key_id}}": admin(KEY_PATHS),
    f"POST {P}/{{project}}/keys/{{key_id}}/revoke": admin(tuple(f"{p}/revoke" for p in KEY_PATHS)),
    f"DELETE {P}/{{project}}/keys/{{key_id}}": admin(KEY_PATHS, 204),
    **owned(
        "monitors",
        ("m1", "acme-nightly"),
        {"name": "Stolen", "slug": "stolen", "schedule": {"period_s": 3600}},
    ),
    **owned(
        "channels",
        ("c-acme", "acme-hook"),
        {
            "name": "Stolen",
            "slug": "stolen",
            "type": "webhook",
            "config": {"url": "https://x.test"},
        },
    ),
    **owned(
        "rules",
        ("rule-acme", "acme-page"),
        {"name": "Stolen", "slug": "stolen", "channels": ["c-acme"]},
    ),
    **{
        f"POST {P}/{{project}}/monitors/{{ref}}/{act}": admin(
            tuple(
                f"{b}/monitors/{ref}/{act}"
                for b in (*MINE, THEIRS)
                for ref in ("m1", "acme-nightly")
            )
        )
        for act in ("pause", "resume")
    },
}

TABLE: dict[str, Case] = {**READ, **DASHBOARD, **ADMIN_ROUTES}
STREAMS = {"GET /v1/live": "test_the_live_stream_carries_only_the_keys_project"}
SCHEMA = "the API's schema or a viewer of it: the same for every caller, no project data"
EXEMPT = {
    "GET /dashboard/analytics": "the screen's frame: only the query string, its tiles read",
    "GET /dashboard/performance": "the screen's frame: only the query string, its tiles read",
    "GET /healthz": "liveness probe: a constant",
    "GET /readyz": "readiness probe: SELECT 1",
    "GET /metrics": "Prometheus counters, labelled by route template and status, never by id",
    "GET /openapi.json": SCHEMA,
    "GET /docs": SCHEMA,
    "GET /docs/oauth2-redirect": SCHEMA,
    "GET /redoc": SCHEMA,
    "GET /dashboard/static/{name:path}": "the dashboard's JS and CSS, the same bytes for all",
    "GET /dashboard/login": "the sign-in form: no project data",
    "POST /dashboard/login": "sets the key it is given as the cookie: no project data",
    "POST /dashboard/logout": "clears the cookie: reads nothing",
}


def served(app: FastAPI) -> set[str]:
    """``METHOD path`` of every route; a route without methods (a mount) counts as ``*``."""
    found = set()
    for route in iter_route_contexts(app.routes):
        methods = set(route.methods or {"*"})
        if "GET" in methods:
            methods.discard("HEAD")
        found |= {f"{method} {route.path}" for method in methods}
    return found


def test_every_served_route_has_an_isolation_case(world: World) -> None:
    routes = served(world.app)
    listed = [*READ, *DASHBOARD, *ADMIN_ROUTES, *STREAMS, *EXEMPT]
    assert len(listed) == len(set(listed)), "a route is listed twice"
    uncovered = sorted(routes - set(listed))
    assert not uncovered, f"routes without a tenant-isolation case in TABLE: {uncovered}"
    stale = sorted(set(listed) - routes)
    assert not stale, f"listed routes the app does not serve: {stale}"
    for route, case in TABLE.items():
        pattern = compile_path(route.split(" ", 1)[1])[0]
        for call in case.calls:
            assert pattern.match(call.path), f"{route}: {call.path} is another route"
        assert any(c.control for c in case.calls), f"{route} has no positive control"
        assert any(c.foreign for c in case.calls), f"{route} is never called by project 2"


def send(app: FastAPI, method: str, call: Call, key: str | None, via: Via) -> httpx.Response:
    async def go() -> httpx.Response:
        cookies = {COOKIE: key} if via.cookie and key else None
        headers = {"Authorization": f"Bearer {key}"} if key and not via.cookie else {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://pulseline.test", cookies=cookies
        ) as client:
            return await client.request(
                method, call.path, params=call.params, json=call.body, headers=headers
            )

    return asyncio.run(go())


def _cases() -> list[Any]:
    return [
        pytest.param(route, marks=pytest.mark.xfail(strict=True, reason=case.leak))
        if case.leak
        else route
        for route, case in TABLE.items()
    ]


@pytest.mark.parametrize("route", _cases())
def test_project_2_gets_zero_rows_of_project_1(route: str, world: World) -> None:
    case, method = TABLE[route], route.split(" ", 1)[0]
    barred = list(case.via.barred)  # refused whatever the ids: tried on the first call only
    for call in case.calls:
        if call.foreign:
            world.reset()
            before = world.state()
            tries = [(k, case.denied) for k in case.via.foreign] + barred
            barred = []
            for key, status in tries:
                r = send(world.app, method, call, key, case.via)
                where = f"{method} {call.path} {call.params or ''} as {WHO[key]}"
                assert r.status_code == status, f"{where}: {r.status_code} {r.text[:300]}"
                assert not case.seen(r), f"{where} shows project 1's data: {r.text[:300]}"
                shown = [m for m in PROJECT_1_ONLY if m in r.text]
                assert not shown, f"{where} shows project 1's {shown}"
                assert world.state() == before, f"{where} wrote something"
        if call.control:
            world.reset()
            before = world.state()
            key = case.own or case.via.own
            r = send(world.app, method, call, key, case.via)
            where = f"{method} {call.path} {call.params or ''} as {WHO[key]}"
            assert r.status_code == case.mine, f"{where}: {r.status_code} {r.text[:300]}"
            assert case.seen(r), f"{where} misses project 1's own data: {r.text[:300]}"
            if method != "GET":
                assert world.state()[:2] != before[:2], f"{where} wrote nothing"


def test_the_live_stream_carries_only_the_keys_project(
    seeded: tuple[StorageSettings, Engine], storage_env: dict[str, str]
) -> None:
    settings = StorageSettings.from_env(storage_env)
    world = build(settings, seeded[1])
    now = datetime.now(UTC).isoformat()
    views = {p: view(f"live-{p}", f"/live-{p}", now, project=p) for p in (1, 2)}
    incidents = {p: incident(p, f"inc-live-{p}", 1) for p in (1, 2)}
    wanted = {p: {views[p]["event_id"], f"inc-live-{p}"} for p in (1, 2)}
    streams = {READ_1: 1, READ_2: 2, ADMIN_2: 2}

    async def connect(client: httpx.AsyncClient, key: str) -> httpx.Response:
        request = client.build_request(
            "GET", "/v1/live", headers={"Authorization": f"Bearer {key}"}
        )
        for _ in range(20):  # 503 while the fresh topics still elect their leaders
            response = await client.send(request, stream=True)
            if response.status_code != 503:
                assert response.status_code == 200, await response.aread()
                return response
            await response.aclose()
            await asyncio.sleep(0.5)
        raise AssertionError("the live stream stayed unavailable")

    async def scenario(port: int) -> dict[str, list[dict[str, Any]]]:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
            )
            refused = await client.get("/v1/live", headers={"Authorization": f"Bearer {ROOT}"})
            assert refused.status_code == 403, refused.text
            lines: dict[str, AsyncIterator[str]] = {}
            for key in streams:
                response = await connect(client, key)
                stack.push_async_callback(response.aclose)
                lines[key] = response.aiter_lines()
                assert await anext(lines[key]) == ": connected"
            # One partition per topic (one record key): a record of project 1 that leaked
            # would reach project 2's streams before project 2's own.
            ingest = INGEST[EventKind.PAGEVIEW].physical(settings.topic_prefix)
            await produce(settings.bootstrap, ingest, [orjson.dumps(views[p]) for p in (1, 2)])
            topic = INCIDENTS.physical(settings.topic_prefix)
            await produce(settings.bootstrap, topic, [orjson.dumps(incidents[p]) for p in (1, 2)])

            async def until_own(key: str) -> list[dict[str, Any]]:
                got: list[dict[str, Any]] = []
                async for line in lines[key]:
                    if line.startswith("data: "):
                        got.append(orjson.loads(line.removeprefix("data: ")))
                        if wanted[streams[key]] <= {d.get("event_id", d.get("id")) for d in got}:
                            break
                return got

            async with asyncio.timeout(30):
                found = await asyncio.gather(*(until_own(key) for key in streams))
            return dict(zip(streams, found, strict=True))

    with serving(world.app) as port:
        received = asyncio.run(scenario(port))
    for key, project in streams.items():
        ids = {d.get("event_id", d.get("id")) for d in received[key]}
        assert ids >= wanted[project], f"{WHO[key]} missed its own records: {received[key]}"
        others = [d for d in received[key] if d["project_id"] != project]
        assert not others, f"{WHO[key]} received another project's records: {others}"
