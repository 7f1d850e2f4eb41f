"""The public status page of a project: no key, only the monitors tagged ``public``.

The control plane's ``Project`` has no opt-in flag for a status page, so the opt-in is per
monitor: a monitor is shown when its tags include ``public``. A project with none answers
404, like an unknown slug. Only names, states, uptime and the incidents of those monitors
are shown; nothing else of the project leaks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pulseline.control.entities import Entity, EntityType, Monitor, Project
from storage import derived_queries as q
from storage.dashboard.data import Reads

PUBLIC_TAG = "public"


@runtime_checkable
class Directory(Protocol):
    """The control-plane lookups the dashboard needs (``ControlView`` provides them)."""

    def get(self, kind: EntityType, entity_id: str | int) -> Entity | None: ...
    def by_slug(
        self, kind: EntityType, slug: str, project_id: int | None = None
    ) -> Entity | None: ...
    def monitors(self, project_id: int | None = None) -> list[Monitor]: ...
    def project(self, project_id: int) -> Project | None: ...


def public_monitors(directory: Directory, slug: str) -> tuple[Project, list[Monitor]] | None:
    """The project with this slug and its public monitors; None if it shows nothing."""
    project = directory.by_slug(EntityType.PROJECT, slug)
    if not isinstance(project, Project):
        return None
    shown = [m for m in directory.monitors(project.id) if PUBLIC_TAG in m.tags]
    return (project, shown) if shown else None


async def status_page(
    directory: Directory | None, reads: Reads, slug: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """The status page's context, or None for 404."""
    found = public_monitors(directory, slug) if directory is not None else None
    if found is None:
        return None
    project, shown = found
    now = now or datetime.now(UTC)
    states = {r["monitor_id"]: r for r in await reads.monitors(project.id)}
    rows = []
    for monitor in shown[:50]:
        health = await reads.one(q.run_health(reads.db, project.id, monitor.id, now)) or {}
        uptime = {
            d: round(100 * health[f"ok_{d}"] / health[f"done_{d}"], 2)
            if health.get(f"done_{d}")
            else None
            for d in q.HEALTH_WINDOWS
        }
        state = states.get(monitor.id, {}).get("state", "new")
        rows.append({"name": monitor.name, "state": state, "uptime": uptime})
    ids = {m.id for m in shown}
    incidents = [
        i
        for i in await reads.incidents(project.id, None)
        if i["monitor_id"] in ids or i["links"].get("monitor_id") in ids
    ]
    all_up = all(r["state"] in ("up", "new", "paused") for r in rows)
    return {
        "project": project.name,
        "monitors": rows,
        "incidents": incidents[:20],
        "all_up": all_up,
        "windows": q.HEALTH_WINDOWS,
    }
