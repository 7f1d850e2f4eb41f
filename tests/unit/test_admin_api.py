"""The admin API over a real ControlView and ControlService, with an in-memory store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pulseline.control.entities import SECRET_MASK as MASK
from pulseline.control.entities import (
    Channel,
    ControlRecord,
    Entity,
    EntityType,
    Monitor,
    record_key,
    type_of,
)
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStoreError
from pulseline.control.view import ControlView
from pulseline.keys import Scope
from storage.admin_api import admin_router

pytestmark = pytest.mark.anyio

NIGHTLY = {
    "name": "Nightly backup",
    "slug": "nightly-backup",
    "schedule": {"cron": "0 2 * * *", "tz": "Europe/Berlin"},
    "grace_s": 600,
    "tags": ["db"],
}


class MemoryStore:
    """ControlStore's twin: each write is a ControlRecord applied to the view at once."""

    def __init__(self) -> None:
        self.view = ControlView()
        self.written: list[tuple[str, bytes | None]] = []
        self.failure: Exception | None = None

    async def put(self, entity: Entity, timeout_s: float = 10.0) -> None:
        kind = type_of(entity)
        record = ControlRecord(
            type=kind,
            id=str(entity.id),
            data=entity.model_dump(mode="json"),
            updated_at=datetime.now(UTC),
        )
        self._write(record_key(kind, entity.id), orjson.dumps(record.model_dump(mode="json")))

    async def delete(self, kind: EntityType, entity_id: str | int, timeout_s: float = 10.0) -> None:
        self._write(record_key(kind, entity_id), None)

    def _write(self, key: str, value: bytes | None) -> None:
        if self.failure is not None:
            raise self.failure
        self.written.append((key, value))
        self.view.apply(key.encode(), value, len(self.written) - 1)


class Admin:
    """A client of the admin API, with the service behind it for arranging state."""

    def __init__(self, http: httpx.AsyncClient, store: MemoryStore, service: ControlService):
        self.http, self.store, self.service = http, store, service

    @staticmethod
    def auth(raw: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {raw}"}

    async def key(self, project_id: int | None, scope: Scope = Scope.ADMIN) -> str:
        return (await self.service.create_key(project_id, scope, f"{scope} key"))[1]

    async def project(self, slug: str) -> int:
        return int((await self.service.create(EntityType.PROJECT, {"name": slug, "slug": slug})).id)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def admin() -> AsyncIterator[Admin]:
    store = MemoryStore()
    service = ControlService(store)
    app = FastAPI()

    @app.exception_handler(RequestValidationError)  # as storage/api.py does for its own routes
    async def _app_level(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid_parameters"}, status_code=400)

    app.include_router(admin_router(service))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as http:
        yield Admin(http, store, service)


@pytest.fixture
async def root(admin: Admin) -> httpx.AsyncClient:
    """The admin API as an admin key without a project (acts on every project)."""
    admin.http.headers.update(Admin.auth(await admin.key(None)))
    return admin.http


# Auth


async def test_it_answers_401_without_a_key(admin: Admin) -> None:
    response = await admin.http.get("/v1/admin/projects")
    assert response.status_code == 401
    assert response.json()["error"] == "missing_key"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "raw", ["pl_admin_nonsense", "pl_admin_" + "A" * 38, "Zm9vOmJhcg==", "pl_admin_"]
)
async def test_it_answers_401_for_a_malformed_or_unknown_key(admin: Admin, raw: str) -> None:
    response = await admin.http.get("/v1/admin/projects", headers=Admin.auth(raw))
    assert response.status_code == 401


async def test_it_answers_401_for_a_revoked_key(admin: Admin) -> None:
    raw = await admin.key(None)
    assert (await admin.http.get("/v1/admin/projects", headers=Admin.auth(raw))).status_code == 200
    record = next(iter(admin.store.view.entities[EntityType.API_KEY].values()))
    await admin.service.revoke_key(str(record.id))
    response = await admin.http.get("/v1/admin/projects", headers=Admin.auth(raw))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_key"


@pytest.mark.parametrize("scope", [Scope.INGEST, Scope.READ])
async def test_it_answers_403_for_a_key_of_another_scope(admin: Admin, scope: Scope) -> None:
    project = await admin.project("shop")
    raw = await admin.key(project, scope)
    response = await admin.http.get(f"/v1/admin/projects/{project}", headers=Admin.auth(raw))
    assert response.status_code == 403
    assert response.json()["error"] == "wrong_scope"


async def test_a_project_admin_key_sees_only_its_own_project(admin: Admin) -> None:
    shop, other = await admin.project("shop"), await admin.project("other")
    await admin.service.create(EntityType.MONITOR, {**NIGHTLY, "project_id": other})
    admin.http.headers.update(Admin.auth(await admin.key(shop)))

    listed = (await admin.http.get("/v1/admin/projects")).json()["data"]
    assert [p["slug"] for p in listed] == ["shop"]
    assert (await admin.http.get("/v1/admin/projects/shop")).status_code == 200
    for path in (
        f"/v1/admin/projects/{other}",
        "/v1/admin/projects/other",
        f"/v1/admin/projects/{other}/monitors",
        f"/v1/admin/projects/{other}/monitors/nightly-backup",
        f"/v1/admin/projects/{other}/keys",
    ):
        response = await admin.http.get(path)
        assert response.status_code == 404, path
    hidden = (await admin.http.get(f"/v1/admin/projects/{other}")).json()
    absent = (await admin.http.get("/v1/admin/projects/9999")).json()
    assert hidden == {"error": "not_found", "detail": f"no project '{other}'"}
    assert absent == {"error": "not_found", "detail": "no project '9999'"}
    assert (await admin.http.delete(f"/v1/admin/projects/{other}")).status_code == 404
    assert admin.store.view.project(other) is not None


async def test_a_project_admin_key_cannot_create_projects(admin: Admin) -> None:
    admin.http.headers.update(Admin.auth(await admin.key(await admin.project("shop"))))
    response = await admin.http.post("/v1/admin/projects", json={"name": "X", "slug": "x"})
    assert response.status_code == 403
    assert admin.store.view.by_slug(EntityType.PROJECT, "x") is None


# Projects


async def test_it_creates_lists_reads_updates_and_deletes_projects(root: httpx.AsyncClient) -> None:
    created = await root.post(
        "/v1/admin/projects", json={"name": "Shop", "slug": "shop", "tier": "pro"}
    )
    assert created.status_code == 201, created.text
    project = created.json()
    assert project["tier"] == "pro" and project["id"] >= 1 and project["ping_key"]

    listed = (await root.get("/v1/admin/projects")).json()["data"]
    assert [p["slug"] for p in listed] == ["shop"]
    by_id = (await root.get(f"/v1/admin/projects/{project['id']}")).json()
    assert by_id == (await root.get("/v1/admin/projects/shop")).json() == project

    patched = await root.patch("/v1/admin/projects/shop", json={"retention_days": 180})
    assert patched.status_code == 200
    assert patched.json() == {**project, "retention_days": 180}

    assert (await root.delete("/v1/admin/projects/shop")).status_code == 204
    assert (await root.get("/v1/admin/projects/shop")).status_code == 404
    assert (await root.get("/v1/admin/projects")).json()["data"] == []


async def test_deleting_a_project_deletes_what_it_owns(
    admin: Admin, root: httpx.AsyncClient
) -> None:
    project = await admin.project("shop")
    await admin.service.create(EntityType.MONITOR, {**NIGHTLY, "project_id": project})
    raw = await admin.key(project, Scope.INGEST)
    assert (await root.delete(f"/v1/admin/projects/{project}")).status_code == 204
    assert admin.store.view.all(EntityType.MONITOR) == []
    assert admin.store.view.lookup(raw) is None


async def test_a_taken_slug_is_a_409(admin: Admin, root: httpx.AsyncClient) -> None:
    await admin.project("shop")
    response = await root.post("/v1/admin/projects", json={"name": "Shop 2", "slug": "shop"})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    await root.post("/v1/admin/projects/shop/monitors", json=NIGHTLY)
    again = await root.post("/v1/admin/projects/shop/monitors", json=NIGHTLY)
    assert again.status_code == 409
    other = await admin.project("other")
    elsewhere = await root.post(f"/v1/admin/projects/{other}/monitors", json=NIGHTLY)
    assert elsewhere.status_code == 201  # slugs are unique per project


# 422 naming the field, whichever layer finds the problem


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/admin/projects", {"name": "Shop", "slug": "Not A Slug"}, "slug"),
        ("/v1/admin/projects", {"slug": "shop"}, "name"),
        ("/v1/admin/projects", {"name": "S", "slug": "s", "id": 7}, "id"),
        ("/v1/admin/projects", {"name": "S", "slug": "s", "retention_days": 0}, "retention_days"),
        (
            "/v1/admin/projects",
            {"name": "S", "slug": "s", "events_per_second": 301159068203820384256},
            "events_per_second",
        ),
        ("/v1/admin/projects", {"name": "S", "slug": "s", "monthly_quota": 2**63}, "monthly_quota"),
        ("/v1/admin/projects/shop/monitors", {**NIGHTLY, "schedule": {}}, "schedule"),
        (
            "/v1/admin/projects/shop/monitors",
            {**NIGHTLY, "schedule": {"cron": "every night"}},
            "schedule.cron",
        ),
        ("/v1/admin/projects/shop/monitors", {**NIGHTLY, "grace_s": -1}, "grace_s"),
        ("/v1/admin/projects/shop/channels", {"name": "c", "slug": "c", "type": "fax"}, "type"),
        ("/v1/admin/projects/shop/rules", {"name": "r", "slug": "r", "channels": []}, "channels"),
        ("/v1/admin/projects/shop/keys", {"name": "k", "scope": "root"}, "scope"),
    ],
)
async def test_a_bad_body_is_a_422_naming_the_field(
    admin: Admin, root: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    await admin.project("shop")
    response = await root.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"
    assert field in [problem["field"] for problem in response.json()["detail"]]


async def test_a_bad_patch_is_a_422_naming_the_field(admin: Admin, root: httpx.AsyncClient) -> None:
    await admin.project("shop")
    await root.post("/v1/admin/projects/shop/monitors", json=NIGHTLY)
    for body, field in [
        ({"schedule": {"cron": "0 2 * * *", "tz": "Mars/Olympus"}}, "schedule.tz"),
        ({"name": None}, "name"),
        ({"project_id": 2}, "project_id"),
    ]:
        response = await root.patch("/v1/admin/projects/shop/monitors/nightly-backup", json=body)
        assert response.status_code == 422, body
        assert [p["field"] for p in response.json()["detail"]] == [field]


async def test_a_body_that_is_not_json_is_a_422(root: httpx.AsyncClient) -> None:
    response = await root.post(
        "/v1/admin/projects", content=b"{name", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "(body)"


async def test_unknown_ids_and_slugs_are_404(admin: Admin, root: httpx.AsyncClient) -> None:
    await admin.project("shop")
    for path in (
        "/v1/admin/projects/9",
        "/v1/admin/projects/nope",
        "/v1/admin/projects/shop/monitors/nope",
        "/v1/admin/projects/shop/channels/00000000-0000-0000-0000-000000000000",
        "/v1/admin/projects/shop/rules/nope",
        "/v1/admin/projects/shop/keys/nope",
    ):
        response = await root.get(path)
        assert (response.status_code, response.json()["error"]) == (404, "not_found"), path
    assert (await root.post("/v1/admin/projects/shop/monitors/nope/pause")).status_code == 404


@pytest.mark.parametrize(
    "failure",
    [
        ControlStoreError("the write of project:1 was not confirmed in 10s"),
        KafkaConnectionError("Unable to bootstrap"),
    ],
)
async def test_a_control_topic_that_cannot_be_written_is_a_503_with_retry_after(
    admin: Admin, root: httpx.AsyncClient, failure: Exception
) -> None:
    admin.store.failure = failure
    response = await root.post("/v1/admin/projects", json={"name": "Shop", "slug": "shop"})
    assert response.status_code == 503
    assert response.json()["error"] == "control_unavailable"
    assert int(response.headers["Retry-After"]) > 0


# Monitors, channels, rules


async def test_it_creates_lists_reads_updates_and_deletes_monitors(
    admin: Admin, root: httpx.AsyncClient
) -> None:
    await admin.project("shop")
    base = "/v1/admin/projects/shop/monitors"
    created = await root.post(base, json=NIGHTLY)
    assert created.status_code == 201, created.text
    monitor = created.json()
    assert monitor["schedule"] == {"period_s": None, "cron": "0 2 * * *", "tz": "Europe/Berlin"}
    assert (monitor["grace_s"], monitor["paused"], monitor["tags"]) == (600, False, ["db"])

    assert [m["id"] for m in (await root.get(base)).json()["data"]] == [monitor["id"]]
    assert (await root.get(f"{base}/{monitor['id']}")).json() == monitor
    assert (await root.get(f"{base}/nightly-backup")).json() == monitor

    patched = await root.patch(f"{base}/nightly-backup", json={"schedule": {"period_s": 3600}})
    assert patched.json()["schedule"] == {"period_s": 3600, "cron": None, "tz": "UTC"}
    assert patched.json()["grace_s"] == 600

    assert (await root.delete(f"{base}/nightly-backup")).status_code == 204
    assert (await root.get(base)).json()["data"] == []
    assert admin.store.view.all(EntityType.MONITOR) == []


async def test_monitors_pause_and_resume(admin: Admin, root: httpx.AsyncClient) -> None:
    await admin.project("shop")
    base = "/v1/admin/projects/shop/monitors"
    await root.post(base, json=NIGHTLY)
    paused = await root.post(f"{base}/nightly-backup/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    monitor = admin.store.view.by_slug(EntityType.MONITOR, "nightly-backup")
    assert isinstance(monitor, Monitor) and monitor.paused
    resumed = await root.post(f"{base}/{monitor.id}/resume")
    assert resumed.json()["paused"] is False


async def test_channel_secrets_are_masked_and_kept(admin: Admin, root: httpx.AsyncClient) -> None:
    await admin.project("shop")
    base = "/v1/admin/projects/shop/channels"
    body = {
        "name": "Ops",
        "slug": "ops",
        "type": "webhook",
        "secret": "whsec_s3cr3t",
        "config": {"url": "https://example.com/hook"},
    }
    created = await root.post(base, json=body)
    assert created.status_code == 201
    assert created.json()["secret"] == MASK
    assert (await root.get(f"{base}/ops")).json()["secret"] == MASK
    listed = await root.get(base)
    assert listed.json()["data"][0]["secret"] == MASK and "whsec_s3cr3t" not in listed.text

    kept = await root.patch(f"{base}/ops", json={"secret": MASK, "disabled": True})
    assert kept.json()["disabled"] is True
    channel = admin.store.view.by_slug(EntityType.CHANNEL, "ops")
    assert isinstance(channel, Channel) and channel.secret == "whsec_s3cr3t"

    await root.patch(f"{base}/ops", json={"secret": "whsec_new"})
    channel = admin.store.view.by_slug(EntityType.CHANNEL, "ops")
    assert isinstance(channel, Channel) and channel.secret == "whsec_new"
    cleared = await root.patch(f"{base}/ops", json={"secret": None})
    assert cleared.json()["secret"] is None


async def test_it_creates_lists_reads_updates_and_deletes_rules(
    admin: Admin, root: httpx.AsyncClient
) -> None:
    await admin.project("shop")
    base = "/v1/admin/projects/shop"
    channel = (
        await root.post(f"{base}/channels", json={"name": "Ops", "slug": "ops", "type": "slack"})
    ).json()
    rule_body = {"name": "Page", "slug": "page", "channels": [channel["id"]], "tags": ["db"]}
    created = await root.post(f"{base}/rules", json=rule_body)
    assert created.status_code == 201, created.text
    assert (await root.get(f"{base}/rules/page")).json() == created.json()
    assert len((await root.get(f"{base}/rules")).json()["data"]) == 1
    muted = await root.patch(f"{base}/rules/page", json={"muted_until": "2030-01-01T00:00:00Z"})
    assert muted.json()["muted_until"].startswith("2030-01-01T00:00:00")
    assert (await root.delete(f"{base}/rules/page")).status_code == 204
    assert (await root.get(f"{base}/rules/page")).status_code == 404


async def test_a_rule_cannot_point_at_another_projects_channel(
    admin: Admin, root: httpx.AsyncClient
) -> None:
    await admin.project("shop")
    other = await admin.project("other")
    foreign = await admin.service.create(
        EntityType.CHANNEL, {"project_id": other, "name": "x", "slug": "x", "type": "email"}
    )
    rule = {"name": "Page", "slug": "page", "channels": [foreign.id]}
    response = await root.post("/v1/admin/projects/shop/rules", json=rule)
    assert response.status_code == 404
    assert admin.store.view.all(EntityType.RULE) == []


# Keys


async def test_a_new_key_is_shown_once_and_never_again(
    admin: Admin, root: httpx.AsyncClient
) -> None:
    project = await admin.project("shop")
    base = "/v1/admin/projects/shop/keys"
    created = await root.post(base, json={"scope": "ingest", "name": "browser"})
    assert created.status_code == 201, created.text
    raw = created.json()["key"]
    assert raw.startswith("pl_ingest_") and created.json()["prefix"] == raw[: len("pl_ingest_") + 4]
    grant = admin.store.view.lookup(raw)
    assert grant is not None and (grant.project_id, grant.scope) == (project, Scope.INGEST)

    record = admin.store.view.get(EntityType.API_KEY, created.json()["id"])
    assert record is not None
    stored_hash = record.model_dump()["hash"]
    for response in (await root.get(base), await root.get(f"{base}/{created.json()['id']}")):
        assert response.status_code == 200
        assert raw not in response.text and stored_hash not in response.text
        assert "hash" not in response.text and '"key"' not in response.text
    assert all(raw.encode() not in (value or b"") for _, value in admin.store.written)
    listed = (await root.get(base)).json()["data"][0]
    assert set(listed) == {
        "id",
        "project_id",
        "scope",
        "name",
        "prefix",
        "created_at",
        "revoked_at",
    }


async def test_keys_are_revoked_and_deleted(admin: Admin, root: httpx.AsyncClient) -> None:
    await admin.project("shop")
    base = "/v1/admin/projects/shop/keys"
    created = (await root.post(base, json={"scope": "read", "name": "analyst"})).json()
    revoked = await root.post(f"{base}/{created['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert admin.store.view.lookup(created["key"]) is None
    assert (await root.post(f"{base}/{created['id']}/revoke")).json() == revoked.json()
    assert (await root.delete(f"{base}/{created['id']}")).status_code == 204
    assert (await root.get(f"{base}/{created['id']}")).status_code == 404


async def test_a_project_admin_key_can_mint_keys_for_its_project(admin: Admin) -> None:
    shop = await admin.project("shop")
    admin.http.headers.update(Admin.auth(await admin.key(shop)))
    created = await admin.http.post(
        "/v1/admin/projects/shop/keys", json={"scope": "admin", "name": "deputy"}
    )
    assert created.status_code == 201
    grant = admin.store.view.lookup(created.json()["key"])
    assert grant is not None and grant.project_id == shop


# OpenAPI


async def test_the_openapi_document_describes_bodies_with_examples(admin: Admin) -> None:
    document = (await admin.http.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for name in ("ProjectIn", "MonitorIn", "MonitorPatch", "ChannelIn", "RuleIn", "KeyIn"):
        assert schemas[name]["examples"], name
    create_monitor = document["paths"]["/v1/admin/projects/{project}/monitors"]["post"]
    assert create_monitor["summary"] == "Create a monitor"
    body_schema = create_monitor["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["$ref"].endswith("/MonitorIn")
    assert "hash" not in schemas["KeyOut"]["properties"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
