"""The admin API: projects, keys, monitors, channels and rules under ``/v1/admin``.

(No ``from __future__ import annotations`` here: FastAPI resolves the closure-local
annotations at definition time.)

Auth is ``Authorization: Bearer <admin key>``, looked up in the control view. A key with
no project acts on every project; a key bound to a project acts on that project only,
and any other project answers 404, exactly as if it did not exist, so ids do not leak.

Every write goes through ``ControlService``, which answers only once the write is
visible in this process's view (read-your-writes). Channel secrets are masked and key
hashes never leave; a raw key is in the response to its creation and nowhere else.

Errors map to HTTP in one place (``error_response``, applied by ``_AdminRoute`` to this
router's routes only, whatever app mounts it):

    Denied                              401 / 403, with its own code
    Invalid, RequestValidationError     422 {"error": "invalid", "detail": [{field, problem}]}
    NotFound                            404
    Conflict                            409
    ControlStoreError, KafkaError       503 with Retry-After
"""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from pulseline.control.entities import (
    SECRET_MASK,
    AlertRule,
    ApiKeyRecord,
    Channel,
    ChannelType,
    Entity,
    EntityType,
    MaintenanceWindow,
    Monitor,
    Name,
    Project,
    Schedule,
    Slug,
    Tier,
    public,
)
from pulseline.control.errors import Conflict, Invalid, NotFound
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStoreError
from pulseline.keys import ApiKey, Scope

RETRY_AFTER_S = 5


class Denied(Exception):
    """The caller may not do this: 401 (no usable key) or 403 (not allowed)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _body(
    status: int, code: str, detail: Any, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _field(err: Any) -> str:
    loc = [str(part) for part in err["loc"][1:]]
    return "(body)" if err["type"] == "json_invalid" or not loc else ".".join(loc)


def error_response(exc: Exception) -> JSONResponse | None:
    """The HTTP answer for an error of an admin operation; None: not ours, re-raise."""
    if isinstance(exc, Denied):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _body(exc.status, exc.code, exc.detail, headers)
    if isinstance(exc, RequestValidationError):
        problems = [{"field": _field(e), "problem": e["msg"]} for e in exc.errors()]
        return _body(422, "invalid", problems)
    if isinstance(exc, Invalid):
        return _body(422, "invalid", exc.problems)
    if isinstance(exc, NotFound):
        return _body(404, "not_found", str(exc))
    if isinstance(exc, Conflict):
        return _body(409, "conflict", str(exc))
    if isinstance(exc, ControlStoreError | KafkaError):
        return _body(503, "control_unavailable", str(exc), {"Retry-After": str(RETRY_AFTER_S)})
    return None


class _AdminRoute(APIRoute):
    """Routes whose errors (body validation included) are mapped by ``error_response``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def mapped(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                response = error_response(exc)
                if response is None:
                    raise
                return response

        return mapped


# Request bodies. They document the shape; the entity models (through ControlService)
# hold the full rules, so a body that parses can still be a 422 naming the field.


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class ProjectIn(BaseModel):
    model_config = _examples({"name": "Shop", "slug": "shop", "tier": "pro"})
    name: Name
    slug: Slug
    tier: Tier = Tier.FREE
    retention_days: int | None = None
    events_per_second: int | None = None
    monthly_quota: int | None = None


class ProjectPatch(BaseModel):
    model_config = _examples({"tier": "enterprise", "retention_days": 180})
    name: Name | None = None
    slug: Slug | None = None
    tier: Tier | None = None
    retention_days: int | None = None
    events_per_second: int | None = None
    monthly_quota: int | None = None


class KeyIn(BaseModel):
    model_config = _examples({"scope": "ingest", "name": "browser"})
    scope: Scope
    name: Name


class KeyOut(BaseModel):
    id: str
    project_id: int | None
    scope: Scope
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str


_NIGHTLY = {
    "name": "Nightly backup",
    "slug": "nightly-backup",
    "schedule": {"cron": "0 2 * * *", "tz": "Europe/Berlin"},
    "grace_s": 600,
    "max_runtime_s": 3600,
    "tags": ["db"],
}


class MonitorIn(BaseModel):
    model_config = _examples(
        _NIGHTLY, {"name": "Heartbeat", "slug": "heartbeat", "schedule": {"period_s": 3600}}
    )
    name: Name
    slug: Slug
    schedule: Schedule
    grace_s: int = 300
    max_runtime_s: int | None = None
    tags: list[str] = []
    paused: bool = False
    maintenance: list[MaintenanceWindow] = []
    thresholds: dict[str, float] = {}


class MonitorPatch(BaseModel):
    model_config = _examples({"schedule": {"cron": "30 3 * * *", "tz": "UTC"}, "grace_s": 900})
    name: Name | None = None
    slug: Slug | None = None
    schedule: Schedule | None = None
    grace_s: int | None = None
    max_runtime_s: int | None = None
    tags: list[str] | None = None
    paused: bool | None = None
    maintenance: list[MaintenanceWindow] | None = None
    thresholds: dict[str, float] | None = None


class ChannelIn(BaseModel):
    model_config = _examples(
        {
            "name": "Ops hook",
            "slug": "ops",
            "type": "webhook",
            "config": {"url": "https://example.com/hook"},
            "secret": "whsec_123",
        }
    )
    name: Name
    slug: Slug
    type: ChannelType
    config: dict[str, Any] = {}
    secret: str | None = None
    disabled: bool = False


class ChannelPatch(BaseModel):
    model_config = _examples({"disabled": True})
    name: Name | None = None
    slug: Slug | None = None
    type: ChannelType | None = None
    config: dict[str, Any] | None = None
    secret: str | None = None
    disabled: bool | None = None


class RuleIn(BaseModel):
    model_config = _examples(
        {
            "name": "Page on failures",
            "slug": "page",
            "channels": ["<channel id>"],
            "severities": ["error"],
        }
    )
    name: Name
    slug: Slug
    channels: list[str]
    kinds: list[str] = []
    severities: list[str] = []
    tags: list[str] = []
    monitors: list[str] = []
    muted_until: datetime | None = None


class RulePatch(BaseModel):
    model_config = _examples({"muted_until": "2030-01-01T00:00:00Z"})
    name: Name | None = None
    slug: Slug | None = None
    channels: list[str] | None = None
    kinds: list[str] | None = None
    severities: list[str] | None = None
    tags: list[str] | None = None
    monitors: list[str] | None = None
    muted_until: datetime | None = None


@dataclass(frozen=True)
class _Owned:
    kind: EntityType
    path: str
    noun: str
    model: type[BaseModel]
    create: type[BaseModel]
    patch: type[BaseModel]


OWNED = (
    _Owned(EntityType.MONITOR, "monitors", "monitor", Monitor, MonitorIn, MonitorPatch),
    _Owned(EntityType.CHANNEL, "channels", "channel", Channel, ChannelIn, ChannelPatch),
    _Owned(EntityType.RULE, "rules", "alert rule", AlertRule, RuleIn, RulePatch),
)

_bearer = HTTPBearer(auto_error=False, description="an admin key: pl_admin_…")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True)
class _Guard:
    """Who is calling (``admin``, a dependency) and which projects they may touch."""

    control: ControlService

    def admin(self, credentials: Credentials) -> ApiKey:
        raw = credentials.credentials.strip() if credentials is not None else ""
        if not raw:
            raise Denied(401, "missing_key", "send an admin key as 'Authorization: Bearer <key>'")
        key = self.control.view.lookup(raw)
        if key is None:
            raise Denied(401, "invalid_key", "the key is unknown or revoked")
        if key.scope is not Scope.ADMIN:
            raise Denied(403, "wrong_scope", f"a {key.scope} key cannot administer")
        return key

    def project(self, key: ApiKey, ref: str) -> Project:
        """The project ``ref`` (id or slug) if this key may act on it; else NotFound."""
        try:
            found: Entity | None = self.control.find(EntityType.PROJECT, ref)
        except NotFound:
            found = None
        if not isinstance(found, Project) or key.project_id not in (None, found.id):
            raise NotFound(f"no project {ref!r}")
        return found


def admin_router(control: ControlService) -> APIRouter:
    """Every ``/v1/admin`` route, with its own error mapping; mount with include_router."""
    router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=_AdminRoute)
    guard = _Guard(control)
    _project_routes(router, guard)
    _key_routes(router, guard)
    for spec in OWNED:
        _owned_routes(router, guard, spec)
    for action, paused in (("pause", True), ("resume", False)):
        _pause_route(router, guard, action, paused)
    return router


def _project_routes(router: APIRouter, guard: _Guard) -> None:
    control = guard.control
    Admin = Annotated[ApiKey, Depends(guard.admin)]

    @router.get("/projects", summary="List the projects this key may administer")
    async def list_projects(key: Admin) -> dict[str, Any]:
        projects = control.view.all(EntityType.PROJECT)
        return {"data": [public(p) for p in projects if key.project_id in (None, p.id)]}

    @router.post(
        "/projects",
        status_code=201,
        response_model=Project,
        summary="Create a project (admin keys without a project only)",
    )
    async def create_project(body: ProjectIn, key: Admin) -> dict[str, Any]:
        if key.project_id is not None:
            raise Denied(403, "project_key", "a key bound to a project cannot create projects")
        data = body.model_dump(mode="json", exclude_unset=True)
        return public(await control.create(EntityType.PROJECT, data))

    @router.get("/projects/{project}", response_model=Project, summary="One project, by id or slug")
    async def get_project(project: str, key: Admin) -> dict[str, Any]:
        return public(guard.project(key, project))

    @router.patch(
        "/projects/{project}",
        response_model=Project,
        summary="Change a project's name, slug, tier or limits",
    )
    async def update_project(project: str, body: ProjectPatch, key: Admin) -> dict[str, Any]:
        found = guard.project(key, project)
        changes = body.model_dump(mode="json", exclude_unset=True)
        return public(await control.update(EntityType.PROJECT, found.id, changes))

    @router.delete(
        "/projects/{project}",
        status_code=204,
        response_class=Response,
        summary="Delete a project and everything it owns, keys included",
    )
    async def delete_project(project: str, key: Admin) -> Response:
        await control.delete(EntityType.PROJECT, guard.project(key, project).id)
        return Response(status_code=204)


def _key_routes(router: APIRouter, guard: _Guard) -> None:
    control = guard.control
    Admin = Annotated[ApiKey, Depends(guard.admin)]
    base = "/projects/{project}/keys"

    def key_of(key: ApiKey, project: str, key_id: str) -> ApiKeyRecord:
        found = control.get(EntityType.API_KEY, key_id, guard.project(key, project).id)
        if not isinstance(found, ApiKeyRecord):
            raise NotFound(f"no api_key {key_id}")
        return found

    @router.get(base, summary="A project's API keys (prefixes only, never the key or its hash)")
    async def list_keys(project: str, key: Admin) -> dict[str, Any]:
        found = guard.project(key, project)
        return {"data": [public(k) for k in control.view.all(EntityType.API_KEY, found.id)]}

    @router.post(
        base,
        status_code=201,
        response_model=KeyCreated,
        summary="Mint a key; this response is the only place the raw key appears",
    )
    async def create_key(project: str, body: KeyIn, key: Admin) -> dict[str, Any]:
        found = guard.project(key, project)
        record, raw = await control.create_key(found.id, body.scope, body.name)
        return {**public(record), "key": raw}

    @router.get(base + "/{key_id}", response_model=KeyOut, summary="One API key")
    async def get_key(project: str, key_id: str, key: Admin) -> dict[str, Any]:
        return public(key_of(key, project, key_id))

    @router.post(
        base + "/{key_id}/revoke",
        response_model=KeyOut,
        summary="Revoke a key; it stops working at once (repeating is harmless)",
    )
    async def revoke_key(project: str, key_id: str, key: Admin) -> dict[str, Any]:
        record = key_of(key, project, key_id)
        return public(await control.revoke_key(record.id, record.project_id))

    @router.delete(
        base + "/{key_id}", status_code=204, response_class=Response, summary="Delete a key"
    )
    async def delete_key(project: str, key_id: str, key: Admin) -> Response:
        record = key_of(key, project, key_id)
        await control.delete(EntityType.API_KEY, record.id, record.project_id)
        return Response(status_code=204)


def _owned_routes(router: APIRouter, guard: _Guard, spec: _Owned) -> None:
    """List, create, get, update and delete for one kind a project owns."""
    control = guard.control
    Admin = Annotated[ApiKey, Depends(guard.admin)]
    Create, Patch = spec.create, spec.patch
    base = f"/projects/{{project}}/{spec.path}"
    one = base + "/{ref}"

    @router.get(base, summary=f"List a project's {spec.path}", name=f"list_{spec.path}")
    async def list_owned(project: str, key: Admin) -> dict[str, Any]:
        found = guard.project(key, project)
        return {"data": [public(e) for e in control.view.all(spec.kind, found.id)]}

    @router.post(
        base,
        status_code=201,
        response_model=spec.model,
        summary=f"Create a {spec.noun}",
        name=f"create_{spec.path}",
    )
    async def create_owned(project: str, body: Create, key: Admin) -> dict[str, Any]:  # type: ignore[valid-type]
        data = cast(BaseModel, body).model_dump(mode="json", exclude_unset=True)
        data["project_id"] = guard.project(key, project).id
        return public(await control.create(spec.kind, data))

    @router.get(
        one,
        response_model=spec.model,
        summary=f"One {spec.noun}, by id or slug",
        name=f"get_{spec.path}",
    )
    async def get_owned(project: str, ref: str, key: Admin) -> dict[str, Any]:
        return public(control.find(spec.kind, ref, guard.project(key, project).id))

    @router.patch(
        one,
        response_model=spec.model,
        name=f"update_{spec.path}",
        summary=f"Change a {spec.noun}; the fields given replace the stored ones",
    )
    async def update_owned(project: str, ref: str, body: Patch, key: Admin) -> dict[str, Any]:  # type: ignore[valid-type]
        project_id = guard.project(key, project).id
        found = control.find(spec.kind, ref, project_id)
        changes = cast(BaseModel, body).model_dump(mode="json", exclude_unset=True)
        if changes.get("secret") == SECRET_MASK:  # the masked secret sent back means "keep it"
            del changes["secret"]
        return public(await control.update(spec.kind, found.id, changes, project_id))

    @router.delete(
        one,
        status_code=204,
        response_class=Response,
        name=f"delete_{spec.path}",
        summary=f"Delete a {spec.noun}",
    )
    async def delete_owned(project: str, ref: str, key: Admin) -> Response:
        project_id = guard.project(key, project).id
        found = control.find(spec.kind, ref, project_id)
        await control.delete(spec.kind, found.id, project_id)
        return Response(status_code=204)


def _pause_route(router: APIRouter, guard: _Guard, action: str, paused: bool) -> None:
    control = guard.control
    Admin = Annotated[ApiKey, Depends(guard.admin)]
    effect = "no alerts until resumed" if paused else "alerts again"

    @router.post(
        f"/projects/{{project}}/monitors/{{ref}}/{action}",
        response_model=Monitor,
        name=f"{action}_monitor",
        summary=f"{action.capitalize()} a monitor: {effect}",
    )
    async def set_paused(project: str, ref: str, key: Admin) -> dict[str, Any]:
        project_id = guard.project(key, project).id
        found = control.find(EntityType.MONITOR, ref, project_id)
        return public(
            await control.update(EntityType.MONITOR, found.id, {"paused": paused}, project_id)
        )
