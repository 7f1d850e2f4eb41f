"""Fuzz the HTTP contract of the gateway and of the read API from their own OpenAPI.

Schemathesis generates requests from each app's ``/openapi.json`` and sends them
in-process (ASGI). The gateway runs on a ``ListProducer``: this fuzzes the HTTP
contract (body parsing, validation, auth, error mapping), not Kafka, which the
gateway's own integration tests cover. The read API runs on the real embedded
ClickHouse (chdb) with migrated tables and a few stored events. The admin routes, served
inside the read API app, are fuzzed on their own over the control plane's in-memory twin.

Two properties, for every operation that takes input:

- no server error (5xx, or an exception escaping the app) with a valid key;
- no 2xx without a key or with an unknown one (ignored auth). Schemathesis' own
  ``ignored_auth`` check only covers operations that declare a security scheme, and
  these apps authenticate in code, so the test sends those variants itself.

Probes (``/healthz``, ``/readyz``, ``/metrics``) take no input and are public by design.
``max_examples`` is small so both apps are fuzzed in about a minute.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import hypothesis
import orjson
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from schemathesis.core.result import Err
from schemathesis.generation.case import Case as AnyCase

from ingest_gateway.app import create_app as gateway_app
from ingest_gateway.producer import ListProducer
from pulseline.control.entities import EntityType, Project
from pulseline.control.service import ControlService
from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.settings import GatewaySettings, StorageSettings
from storage.admin_api import admin_router
from storage.api import create_app as read_app
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from tests.unit.test_admin_api import MemoryStore

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25
ADMIN_EXAMPLES = 10  # 27 admin operations, each case sent with 4 keys
PROJECT = 7
PROBES = {"/healthz", "/readyz", "/metrics"}
# Server-Sent Events never end by design; their contract is tested in test_read_api_analytics.
STREAMS = frozenset({"/v1/live"})


class Published:
    """The read API's actions publish here instead of Kafka: this fuzzes the HTTP contract."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        self.records.append((topic, key, value))


INGEST_KEY = new_key(Scope.INGEST)
READ_KEY = new_key(Scope.READ)
UNKNOWN_KEY = new_key(Scope.READ)


@dataclass
class Findings:
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    ignored_auth: list[str] = field(default_factory=list)
    cases: int = 0


def _send(case: AnyCase[Any], headers: dict[str, str]) -> int | str:
    try:
        return int(case.call(headers=headers).status_code)
    except Exception as exc:  # an exception escaping the app is a server error too
        return f"raised {type(exc).__name__}: {exc}"[:200]


def fuzz(
    app: FastAPI,
    valid: dict[str, str],
    invalid: list[dict[str, str]],
    prepare: Callable[[AnyCase[Any]], None] = lambda case: None,
    paths: Callable[[str], bool] = lambda path: True,
    max_examples: int = MAX_EXAMPLES,
) -> Findings:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = Findings()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        if operation.path in PROBES or operation.path in STREAMS or not paths(operation.path):
            continue

        @hypothesis.settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: AnyCase[Any]) -> None:
            prepare(case)
            found.cases += 1
            label = f"{case.method} {case.formatted_path}"
            status = _send(case, valid)
            found.statuses[str(status)] += 1
            if isinstance(status, str) or status >= 500:
                found.server_errors.append(f"{label}: {status}\n{case.as_curl_command(valid)}")
            for headers in invalid:
                denied = _send(case, headers)
                if isinstance(denied, int) and 200 <= denied < 300:
                    found.ignored_auth.append(f"{label} with {headers}: {denied}")

        run()
    print(f"{found.cases} cases, statuses {dict(found.statuses)}")
    return found


def test_the_gateway_answers_no_5xx_and_never_2xx_without_a_key() -> None:
    settings = GatewaySettings.from_env({"PULSELINE_RATE_LIMITS_ENABLED": "false"})
    keyring = StaticKeyRing()
    keyring.add(INGEST_KEY, ApiKey(PROJECT, Scope.INGEST))
    app = gateway_app(settings, keyring, ListProducer())
    valid = {
        "Authorization": f"Bearer {INGEST_KEY}",
        "X-Sentry-Auth": f"Sentry sentry_key={INGEST_KEY}",
    }
    invalid = [{}, {"Authorization": f"Bearer {UNKNOWN_KEY}"}]

    turn = itertools.count()

    def own_project(case: AnyCase[Any]) -> None:
        """Every other Sentry case aims at the key's project, to get past the auth check."""
        if case.path_parameters and "project_id" in case.path_parameters and next(turn) % 2:
            case.path_parameters["project_id"] = str(PROJECT)

    found = fuzz(app, valid, invalid, own_project)

    assert found.server_errors == []
    assert found.ignored_auth == []
    assert found.statuses["202"] + found.statuses["200"] > 0, "no case got past validation"


class ServedStore(MemoryStore):
    """The in-memory twin with the lifecycle the gateway's lifespan calls."""

    loaded = True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def test_the_ping_routes_answer_no_5xx() -> None:
    """Healthchecks-style pings authenticate by their URL (a monitor's uuid, or a project's
    ping key and a slug), so only the no-5xx property applies. Two cases in three aim at a
    real monitor or ping key, with the fuzzed path after it, to get past the lookup."""
    settings = GatewaySettings.from_env({"PULSELINE_RATE_LIMITS_ENABLED": "false"})
    store = ServedStore()
    service = ControlService(store)

    async def arrange() -> tuple[str, str]:
        project = await service.create(EntityType.PROJECT, {"name": "pings", "slug": "pings"})
        monitor = await service.create(
            EntityType.MONITOR,
            {
                "name": "Nightly",
                "slug": "nightly",
                "project_id": int(project.id),
                "schedule": {"cron": "0 2 * * *", "tz": "Europe/Berlin"},
            },
        )
        assert isinstance(project, Project)
        return str(monitor.id), project.ping_key

    monitor, ping_key = asyncio.run(arrange())
    app = gateway_app(settings, StaticKeyRing(), ListProducer(), store)  # type: ignore[arg-type]
    turn = itertools.count()

    def aim(case: AnyCase[Any]) -> None:
        rest = str((case.path_parameters or {}).get("rest", ""))
        prefix = (None, monitor, f"{ping_key}/nightly")[next(turn) % 3]
        if prefix is not None and case.path_parameters is not None:
            case.path_parameters["rest"] = f"{prefix}/{rest}".rstrip("/")

    found = fuzz(app, {}, [], aim, paths=lambda path: path.startswith("/ping/"))

    assert found.server_errors == []
    assert found.statuses["200"] > 0, "no case reached a monitor"


def _store_events(engine: Engine) -> None:
    now = datetime.now(UTC)
    attributes = orjson.dumps({"name": "signup"}).decode()
    rows = [
        [PROJECT, "event", now, f"00000000-0000-4000-8000-00000000000{i}", now, "u", "s", "1.0"]
        for i in range(5)
    ]
    for i, row in enumerate(rows):
        row.extend(["prod", attributes, "t", 0, i])
    engine.client.insert(
        f"{engine.database}.events",
        rows,
        column_names=[
            "project_id",
            "kind",
            "timestamp",
            "event_id",
            "received_at",
            "distinct_id",
            "session_id",
            "release",
            "environment",
            "attributes",
            "_topic",
            "_partition",
            "_offset",
        ],
    )


def test_the_read_api_answers_no_5xx_and_never_2xx_without_a_read_key(
    storage_env: dict[str, str],
) -> None:
    settings = StorageSettings.from_env(storage_env)
    engine = Engine.open(settings)
    migrate(engine)
    _store_events(engine)
    keyring = StaticKeyRing()
    keyring.add(READ_KEY, ApiKey(PROJECT, Scope.READ))
    keyring.add(INGEST_KEY, ApiKey(PROJECT, Scope.INGEST))
    app = read_app(settings, engine, keyring, StorageMetrics(), publisher=Published())
    invalid = [
        {},
        {"Authorization": f"Bearer {UNKNOWN_KEY}"},
        {"Authorization": f"Bearer {INGEST_KEY}"},
    ]
    try:
        found = fuzz(app, {"Authorization": f"Bearer {READ_KEY}"}, invalid)
    finally:
        engine.close()

    assert found.server_errors == []
    assert found.ignored_auth == []
    assert found.statuses["200"] > 0, "no case got past validation"


def test_the_admin_api_answers_no_5xx_and_never_2xx_without_an_admin_key(
    storage_env: dict[str, str],
) -> None:
    """The admin routes as served (inside the read API app), over the control plane's
    in-memory twin: this fuzzes their HTTP contract; the Kafka-backed store has its own
    integration tests. A project's read key is among the keys that must be refused."""
    settings = StorageSettings.from_env(storage_env)
    engine = Engine.open(settings)
    migrate(engine)
    store = MemoryStore()
    service = ControlService(store)

    async def arrange() -> tuple[str, str]:
        project = await service.create(EntityType.PROJECT, {"name": "fuzz", "slug": "fuzz"})
        root = (await service.create_key(None, Scope.ADMIN, "root"))[1]
        read = (await service.create_key(int(project.id), Scope.READ, "read"))[1]
        return root, read

    root, read = asyncio.run(arrange())
    app = read_app(
        settings, engine, store.view, StorageMetrics(), admin_router(service), Published()
    )
    invalid = [
        {},
        {"Authorization": f"Bearer {new_key(Scope.ADMIN)}"},
        {"Authorization": f"Bearer {read}"},
    ]
    try:
        found = fuzz(
            app,
            {"Authorization": f"Bearer {root}"},
            invalid,
            paths=lambda path: path.startswith("/v1/admin"),
            max_examples=ADMIN_EXAMPLES,
        )
    finally:
        engine.close()

    assert found.server_errors == []
    assert found.ignored_auth == []
    assert found.statuses["200"] + found.statuses["201"] > 0, "no case got past validation"
