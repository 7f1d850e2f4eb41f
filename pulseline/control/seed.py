"""Declarative seeding from ``pulseline.yaml``: make the control plane match the file.

Entities are matched by slug (keys by project, scope and name), so applying the same
file twice writes nothing. ``${VAR}`` anywhere in the file is replaced from the
environment; a missing variable is an error that names it. A key given in the file is
registered by hash; a key not given is minted once and reported, never written back.

    projects:
      - slug: shop
        id: 7                    # optional; keeps Sentry DSNs stable
        name: Shop
        tier: pro
        keys:
          - {name: browser, scope: ingest, key: "${SHOP_INGEST_KEY}"}
        monitors:
          - {slug: nightly-backup, name: Nightly backup, schedule: {cron: "0 2 * * *",
             tz: Europe/Berlin}, grace_s: 600}
        channels:
          - {slug: ops, name: Ops, type: webhook, config: {url: "https://…"},
             secret: "${OPS_WEBHOOK_SECRET}"}
        rules:
          - {slug: everything, name: Everything to ops, channels: [ops]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pulseline.control.entities import MODELS, ApiKeyRecord, Entity, EntityType
from pulseline.control.errors import Invalid
from pulseline.control.service import ControlService
from pulseline.keys import Scope, key_hash

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_OWNED = (
    ("channels", EntityType.CHANNEL),
    ("monitors", EntityType.MONITOR),
    ("rules", EntityType.RULE),
)


class SeedError(ValueError):
    """The seed file cannot be applied; the message says where."""


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    minted_keys: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated)


def substitute(text: str, env: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match[1] not in env:
            raise SeedError(f"the seed file uses ${{{match[1]}}}, which is not set")
        return env[match[1]]

    return _VAR.sub(one, text)


def load(path: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    doc = yaml.safe_load(substitute(path.read_text(), env)) or {}
    projects = doc.get("projects", []) if isinstance(doc, dict) else None
    if not isinstance(projects, list) or not all(isinstance(p, dict) for p in projects):
        raise SeedError(f"{path}: expected 'projects:' with a list of projects")
    return projects


def _differs(kind: EntityType, current: Entity, changes: dict[str, Any]) -> bool:
    """Compare as models, so defaults the file leaves out do not count as changes."""
    try:
        merged = MODELS[kind].model_validate({**current.model_dump(mode="json"), **changes})
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None
    return merged != current


async def _ensure(
    service: ControlService,
    kind: EntityType,
    desired: dict[str, Any],
    project_id: int | None,
    report: SeedReport,
) -> Entity:
    label = f"{kind.value} {desired.get('slug')}"
    current = service.view.by_slug(kind, str(desired.get("slug")), project_id)
    if current is None:
        data = desired if project_id is None else {**desired, "project_id": project_id}
        entity = await service.create(kind, data)
        report.created.append(label)
        return entity
    changes = {k: v for k, v in desired.items() if k != "id"}
    if _differs(kind, current, changes):
        report.updated.append(label)
        return await service.update(kind, current.id, changes)
    report.unchanged += 1
    return current


async def _ensure_key(
    service: ControlService,
    project_id: int | None,
    spec: dict[str, Any],
    slug: str,
    report: SeedReport,
) -> None:
    scope, name, raw = Scope(spec["scope"]), str(spec["name"]), spec.get("key")
    same = [
        k
        for k in service.view.all(EntityType.API_KEY, project_id)
        if isinstance(k, ApiKeyRecord)
        and k.scope is scope
        and k.name == name
        and k.revoked_at is None
    ]
    if raw is None and same:
        report.unchanged += 1
        return
    if raw is not None and any(k.hash == key_hash(raw) for k in same):
        report.unchanged += 1
        return
    _, minted = await service.create_key(project_id, scope, name, raw)
    report.created.append(f"{scope.value} key {name}")
    if raw is None:
        report.minted_keys.append((slug, name, minted))
    for old in same:  # the file names a different key now: the old one stops working
        await service.revoke_key(old.id)


async def apply(service: ControlService, projects: list[dict[str, Any]]) -> SeedReport:
    report = SeedReport()
    for spec in projects:
        spec = dict(spec)
        owned = {name: spec.pop(name, []) for name in ("keys", "monitors", "channels", "rules")}
        try:
            project = await _ensure(service, EntityType.PROJECT, spec, None, report)
            for key in owned["keys"]:
                await _ensure_key(service, int(project.id), key, str(spec.get("slug")), report)
            slugs: dict[str, str] = {}
            for section, kind in _OWNED:
                for item in owned[section]:
                    item = dict(item)
                    if kind is EntityType.RULE:
                        item["channels"] = [slugs.get(c, c) for c in item.get("channels", [])]
                    entity = await _ensure(service, kind, item, int(project.id), report)
                    if kind is EntityType.CHANNEL:
                        slugs[str(item["slug"])] = str(entity.id)
        except Invalid as exc:
            raise SeedError(f"project {spec.get('slug')!r}: {exc}") from None
    return report
