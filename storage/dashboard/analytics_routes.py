"""Routes of the web analytics and performance screens, and of their tiles.

(No ``from __future__ import annotations``: FastAPI resolves ``Annotated`` at definition.)

A screen renders only its frame: the window, the filters and one empty tile per part.
Each tile then fetches ``/dashboard/{screen}/tiles/{name}`` with the same query string.
A tile that fails answers its error state with a status saying why (400 bad parameters,
422 too expensive, 500 otherwise) and the header ``X-Tile-Error``; ``dashboard.js`` swaps
it in, with a retry button.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from storage import analytics_queries as aq
from storage import analytics_shape as shape
from storage.client import Engine
from storage.dashboard.analytics_data import AnalyticsReads
from storage.dashboard.analytics_tiles import ANALYTICS, PERFORMANCE, Ask, Source, Tile
from storage.dashboard.data import Reads
from storage.dashboard.period import period
from storage.dashboard.selection import Selection
from storage.read_common import ProjectKey

log = logging.getLogger("pulseline.dashboard")

Render = Callable[..., HTMLResponse]
Clock = Callable[[], datetime]
ANALYTICS_TILES = ("live", "metrics", "chart", "sources", "pages", "devices")


def analytics_routes(
    router: APIRouter,
    render: Render,
    viewer: Callable[..., ProjectKey],
    engine: Engine,
    reads: Reads,
    clock: Clock,
    scripts: list[str],
) -> None:
    """Adds ``/dashboard/analytics`` and ``/dashboard/performance`` to ``router``."""
    source = Source(AnalyticsReads(engine), reads)
    Viewer = Annotated[ProjectKey, Depends(viewer)]

    def ask(request: Request, key: ProjectKey, window_only: bool = False) -> Ask:
        selection = Selection.parse(request.query_params)
        if window_only:  # performance reads take no interval, funnel or filter
            selection = Selection(selection.preset, None, selection.tz)
        now = clock()
        window = period(selection.preset, selection.interval, selection.tz, now)
        return Ask(key.project_id, selection, window, now)

    def frame(template: str, request: Request, key: ProjectKey, **context: Any) -> HTMLResponse:
        found = ask(request, key, window_only=template == "performance.html")
        return render(template, request, scripts=scripts, ask=found, **context)

    async def tile(tiles: dict[str, Tile], name: str, request: Request, key: ProjectKey) -> Any:
        chosen = tiles.get(name)
        if chosen is None:
            return HTMLResponse("no such tile", status_code=404)
        found = ask(request, key)
        try:
            template, context = await chosen(source, found)
        except aq.BadAnalyticsQuery as exc:
            code, message = 400, str(exc)
        except Exception as exc:
            if shape.timed_out(exc):
                code, message = 422, "This took too long to compute; choose a shorter range."
            else:
                log.exception("dashboard tile %s failed", name)
                code, message = 500, "This part could not be loaded."
        else:
            return render(template, request, ask=found, **context)
        response = render("partials/tile_error.html", request, code, message=message)
        response.headers["X-Tile-Error"] = str(code)
        return response

    @router.get("/dashboard/analytics")
    async def analytics(request: Request, key: Viewer) -> HTMLResponse:
        return frame("analytics.html", request, key, tiles=ANALYTICS_TILES)

    @router.get("/dashboard/analytics/tiles/{name}")
    async def analytics_tile(request: Request, key: Viewer, name: str) -> Any:
        return await tile(ANALYTICS, name, request, key)

    @router.get("/dashboard/performance")
    async def performance(request: Request, key: Viewer) -> HTMLResponse:
        return frame("performance.html", request, key, tiles=tuple(PERFORMANCE))

    @router.get("/dashboard/performance/tiles/{name}")
    async def performance_tile(request: Request, key: Viewer, name: str) -> Any:
        return await tile(PERFORMANCE, name, request, key)
