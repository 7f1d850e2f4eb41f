"""How ``pulseline projects|keys|monitors|channels|rules`` print: a table, or JSON.

Pure: entities in, text out. Secrets never print: key hashes are dropped and a channel's
secret is masked; a new key's raw value appears only in the result of its creation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pulseline.control.entities import (
    AlertRule,
    ApiKeyRecord,
    Channel,
    Entity,
    EntityType,
    Monitor,
    Project,
    public,
)
from pulseline.table import format_table


@dataclass(frozen=True)
class Result:
    """What a command did: entities to show (``many``: a listing), or a deletion."""

    kind: EntityType
    entities: list[Entity] = field(default_factory=list)
    many: bool = False
    raw_key: str | None = None
    deleted: str | None = None


HEADERS = {
    EntityType.PROJECT: ["id", "slug", "name", "tier", "retention", "events/s", "monthly quota"],
    EntityType.API_KEY: ["id", "project", "scope", "name", "prefix", "created", "revoked"],
    EntityType.MONITOR: ["id", "slug", "name", "schedule", "grace", "state", "tags"],
    EntityType.CHANNEL: ["id", "slug", "name", "type", "secret", "state"],
    EntityType.RULE: ["id", "slug", "name", "channels", "filters", "muted until"],
}


def _when(value: Any) -> str:
    return "-" if value is None else value.isoformat(timespec="seconds")


def row(entity: Entity) -> list[str]:
    """One line of a listing (the ``HEADERS`` of its kind)."""
    if isinstance(entity, Project):
        limits = entity.limits()
        return [
            str(entity.id),
            entity.slug,
            entity.name,
            entity.tier.value,
            f"{limits.retention_days}d",
            str(limits.events_per_second),
            str(limits.monthly_quota),
        ]
    if isinstance(entity, ApiKeyRecord):
        return [
            entity.id,
            str(entity.project_id or "*"),
            entity.scope.value,
            entity.name,
            entity.prefix + "…",
            _when(entity.created_at),
            _when(entity.revoked_at),
        ]
    if isinstance(entity, Monitor):
        s = entity.schedule
        schedule = f"cron {s.cron} {s.tz}" if s.cron else f"every {s.period_s}s"
        return [
            entity.id,
            entity.slug,
            entity.name,
            schedule,
            f"{entity.grace_s}s",
            "paused" if entity.paused else "active",
            ",".join(entity.tags),
        ]
    if isinstance(entity, Channel):
        return [
            entity.id,
            entity.slug,
            entity.name,
            entity.type,
            "set" if entity.secret else "-",
            "disabled" if entity.disabled else "enabled",
        ]
    if isinstance(entity, AlertRule):
        filters = [
            f"{name}={','.join(v)}"
            for name, v in (
                ("kinds", entity.kinds),
                ("severities", entity.severities),
                ("tags", entity.tags),
                ("monitors", entity.monitors),
            )
            if v
        ]
        return [
            entity.id,
            entity.slug,
            entity.name,
            str(len(entity.channels)),
            " ".join(filters) or "all",
            _when(entity.muted_until),
        ]
    raise TypeError(f"not a control entity: {type(entity).__name__}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)


def render(result: Result, as_json: bool) -> str:
    if result.deleted is not None:
        if as_json:
            return json.dumps({"deleted": result.kind.value, "id": result.deleted})
        return f"deleted {result.kind.value} {result.deleted}"
    if result.many:
        if as_json:
            return json.dumps([public(e) for e in result.entities], indent=2)
        return format_table(HEADERS[result.kind], [row(e) for e in result.entities])
    data = public(result.entities[0])
    if result.raw_key is not None:
        data["key"] = result.raw_key
    if as_json:
        return json.dumps(data, indent=2)
    return format_table(["field", "value"], [[k, _cell(v)] for k, v in data.items()])
