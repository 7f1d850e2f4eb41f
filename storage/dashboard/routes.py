"""The dashboard's routes: login, the signed-in pages, the public status page, assets.

(No ``from __future__ import annotations``: FastAPI resolves ``Annotated`` at definition.)

Every page reads only the project of the read key in the session cookie; without a valid
one it redirects to the login form (an htmx request gets 401 with ``HX-Redirect``). Live
parts re-fetch themselves with htmx every 5 s. The analytics and performance screens are
added by ``analytics_routes``.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pulseline.control.entities import EntityType, Monitor
from pulseline.keys import KeyRing
from storage import derived_queries as q
from storage.client import Engine
from storage.dashboard import views, vitals
from storage.dashboard.analytics_routes import analytics_routes
from storage.dashboard.assets import load_assets
from storage.dashboard.data import Reads
from storage.dashboard.selection import LABELS
from storage.dashboard.session import COOKIE, cookie_settings, grant
from storage.dashboard.status import Directory, status_page
from storage.read_common import ProjectKey

Clock = Callable[[], datetime]
TEMPLATES = Path(__file__).parent / "templates"
PAGE_SCRIPTS = ["vendor/htmx-2.0.11.min.js", "dashboard.js"]
CHART_SCRIPTS = [*PAGE_SCRIPTS, "vendor/uplot-1.6.32.iife.min.js"]


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(), trim_blocks=True
    )
    env.filters["state_label"] = views.state_label
    env.filters["iso"] = lambda m: m.astimezone(UTC).isoformat() if m else ""
    env.globals["favicon"] = views.favicon
    env.globals["in_zone"] = views.in_zone
    env.globals["rate"] = vitals.rate
    env.globals["vital"] = vitals.shown
    env.globals["labels"] = LABELS
    return env


def dashboard_router(
    engine: Engine, keyring: KeyRing, clock: Clock = lambda: datetime.now(UTC)
) -> APIRouter:
    """Pages under ``/dashboard`` and ``/status/{slug}``; the status page needs ``keyring``
    to also be a ``Directory`` (the control-plane view), else it answers 404."""
    router = APIRouter(include_in_schema=False)
    env = environment()
    assets = load_assets()
    reads = Reads(engine)
    directory = keyring if isinstance(keyring, Directory) else None

    def page(template: str, request: Request, code: int = 200, **context: Any) -> HTMLResponse:
        scripts = context.pop("scripts", PAGE_SCRIPTS)
        html = env.get_template(template).render(
            request=request, scripts=scripts, now=clock(), ago=views.ago, **context
        )
        return HTMLResponse(html, status_code=code)

    def viewer(request: Request) -> ProjectKey:
        found = grant(keyring, request.cookies.get(COOKIE, ""))
        if isinstance(found, str):
            if request.headers.get("hx-request"):
                # A redirect would swap the login form into the part; send the page there.
                raise HTTPException(
                    401, "sign in first", headers={"HX-Redirect": "/dashboard/login"}
                )
            raise HTTPException(303, "sign in first", headers={"Location": "/dashboard/login"})
        return found

    Viewer = Annotated[ProjectKey, Depends(viewer)]

    @router.get("/dashboard/static/{name:path}")
    async def static(name: str, request: Request) -> Response:
        asset = assets.get(name)
        if asset is None:
            return Response("not found", status_code=404)
        headers = {"ETag": asset.etag, "Cache-Control": "public, max-age=86400"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    @router.get("/dashboard/login")
    async def login_form(request: Request) -> HTMLResponse:
        return page("login.html", request, error=None)

    @router.post("/dashboard/login")
    async def login(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
            return page("login.html", request, 403, error="Cross-site sign-in refused.")
        form = parse_qs((await request.body()).decode(errors="replace"))
        found = grant(keyring, form.get("key", [""])[0])
        if isinstance(found, str):
            return page("login.html", request, 401, error=found)
        response = RedirectResponse("/dashboard/", status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(value=form["key"][0].strip(), **cookie_settings(secure))  # type: ignore[arg-type]
        return response

    @router.post("/dashboard/logout")
    async def logout() -> Response:
        response = RedirectResponse("/dashboard/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def overview_context(key: ProjectKey) -> dict[str, Any]:
        now = clock()
        monitors = await reads.monitors(key.project_id)
        open_incidents = await reads.incidents(key.project_id, "open")
        unresolved, _ = await reads.issues(key.project_id, "unresolved", "last_seen", None)
        strip = views.health(monitors, open_incidents, unresolved, now, reads.limit)
        return {"health": strip, "monitors": monitors}

    @router.get("/dashboard/")
    async def overview(request: Request, key: Viewer) -> HTMLResponse:
        now = clock()
        context = await overview_context(key)
        recent = await reads.incidents(key.project_id, None)
        anomalies = await reads.anomalies(key.project_id, now - timedelta(days=1), now)
        return page(
            "overview.html",
            request,
            **context,
            marks=views.timeline(recent, now),
            anomalies=anomalies[:12],
        )

    @router.get("/dashboard/partials/health")
    async def health_partial(request: Request, key: Viewer) -> HTMLResponse:
        return page("partials/health_live.html", request, **await overview_context(key))

    @router.get("/dashboard/crons")
    async def crons(request: Request, key: Viewer) -> HTMLResponse:
        monitors = views.pinned_first(await reads.monitors(key.project_id))
        strips = {
            m["monitor_id"]: views.run_strip(await reads.runs(key.project_id, m["monitor_id"]))
            for m in monitors[:100]
        }
        return page("crons.html", request, monitors=monitors, strips=strips)

    @router.get("/dashboard/crons/{monitor_id}")
    async def cron(request: Request, key: Viewer, monitor_id: str, tz: str = "utc") -> HTMLResponse:
        row = await reads.one(q.monitor(engine.database, key.project_id, monitor_id))
        if row is None:
            return page("missing.html", request, 404, what=f"monitor {monitor_id}")
        runs = await reads.runs(key.project_id, monitor_id)
        health = await reads.one(q.run_health(engine.database, key.project_id, monitor_id, clock()))
        found = directory.get(EntityType.MONITOR, monitor_id) if directory else None
        entity = found if isinstance(found, Monitor) else None
        if entity and entity.project_id != key.project_id:
            entity = None
        project = directory.project(key.project_id) if directory else None
        zone = entity.schedule.tz if entity else "UTC"
        return page(
            "cron.html",
            request,
            scripts=CHART_SCRIPTS,
            monitor=row,
            runs=runs,
            runs_health=health or {},
            band=[q.finite(float(v)) for v in (health or {}).get("durations", [])],
            entity=entity,
            ping_key=project.ping_key if project else None,
            zone=zone,
            shown_zone=zone if tz == "monitor" else "UTC",
            in_zone=views.in_zone,
            upcoming=views.next_runs(entity, clock()) if entity else [],
            chart=[
                [r["at"].timestamp() for r in reversed(runs) if r["duration_ms"] is not None],
                [r["duration_ms"] for r in reversed(runs) if r["duration_ms"] is not None],
            ],
        )

    @router.get("/dashboard/issues")
    async def issues(
        request: Request,
        key: Viewer,
        status: Annotated[str, Query(pattern="^(unresolved|resolved|ignored)$")] = "unresolved",
        sort: Annotated[str, Query(pattern="^(last_seen|count)$")] = "last_seen",
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> HTMLResponse:
        rows, next_cursor = await reads.issues(key.project_id, status, sort, cursor)
        return page(
            "issues.html", request, issues=rows, status=status, sort=sort, next_cursor=next_cursor
        )

    @router.get("/dashboard/issues/{fingerprint}")
    async def issue(request: Request, key: Viewer, fingerprint: str) -> HTMLResponse:
        row = await reads.one(q.issue(engine.database, key.project_id, fingerprint))
        if row is None:
            return page("missing.html", request, 404, what=f"issue {fingerprint}")
        event = await reads.latest_event(key.project_id, fingerprint)
        attributes = event["attributes"] if event else {}
        return page(
            "issue.html",
            request,
            issue=row,
            event=event,
            frames=views.frames(attributes),
            tags=views.as_dict(attributes.get("tags")),
            breadcrumbs=(attributes.get("breadcrumbs") or {}).get("values", [])
            if isinstance(attributes.get("breadcrumbs"), dict)
            else attributes.get("breadcrumbs") or [],
        )

    @router.get("/dashboard/incidents")
    async def incidents(
        request: Request,
        key: Viewer,
        state: Annotated[str | None, Query(pattern="^(open|acked|resolved)$")] = None,
    ) -> HTMLResponse:
        rows = await reads.incidents(key.project_id, state)
        return page("incidents.html", request, incidents=rows, state=state)

    @router.get("/dashboard/incidents/{incident_id}")
    async def incident(request: Request, key: Viewer, incident_id: str) -> HTMLResponse:
        row = await reads.incident(key.project_id, incident_id)
        if row is None:
            return page("missing.html", request, 404, what=f"incident {incident_id}")
        deliveries = await reads.deliveries(key.project_id, incident_id, clock())
        return page("incident.html", request, incident=row, events=reads.story(row, deliveries))

    analytics_routes(router, page, viewer, engine, reads, clock, CHART_SCRIPTS)

    @router.get("/status/{slug}")
    async def status(request: Request, slug: str) -> HTMLResponse:
        found = await status_page(directory, reads, slug)
        if found is None:
            return page("missing.html", request, 404, what=f"status page {slug}", scripts=[])
        return page("status.html", request, scripts=[], **found)

    return router
