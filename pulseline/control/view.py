"""The materialised control plane: fold ``control.entities`` records into lookups. Pure.

``apply`` takes records in offset order; a tombstone (``value is None``) deletes. A
record this version cannot read is kept out of the view and listed in ``unreadable``
(with its offset and reason), never dropped silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TypeVar

import orjson
from pydantic import ValidationError

from pulseline.control.entities import (
    MODELS,
    ApiKeyRecord,
    ControlRecord,
    Entity,
    EntityType,
    Monitor,
    Project,
)
from pulseline.keys import ApiKey, key_hash, well_formed

E = TypeVar("E", bound=Entity)


@dataclass(frozen=True)
class Unreadable:
    offset: int
    key: str
    reason: str


@dataclass
class ControlView:
    entities: dict[EntityType, dict[str, Entity]] = field(
        default_factory=lambda: {kind: {} for kind in EntityType}
    )
    unreadable: list[Unreadable] = field(default_factory=list)
    offset: int = -1
    _keys_by_hash: dict[str, ApiKeyRecord] = field(default_factory=dict)

    def apply(self, key: bytes, value: bytes | None, offset: int) -> None:
        self.offset = max(self.offset, offset)
        text = key.decode(errors="replace")
        kind_text, _, entity_id = text.partition(":")
        try:
            kind = EntityType(kind_text)
        except ValueError:
            self.unreadable.append(Unreadable(offset, text, f"unknown entity type {kind_text!r}"))
            return
        if value is None:
            self._remove(kind, entity_id)
            return
        try:
            record = ControlRecord.model_validate(orjson.loads(value))
            entity = MODELS[kind].model_validate(record.data)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            self.unreadable.append(Unreadable(offset, text, str(exc).splitlines()[0]))
            return
        self._remove(kind, entity_id)
        self.entities[kind][entity_id] = entity  # type: ignore[assignment]
        if isinstance(entity, ApiKeyRecord):
            self._keys_by_hash[entity.hash] = entity

    def _remove(self, kind: EntityType, entity_id: str) -> None:
        old = self.entities[kind].pop(entity_id, None)
        if isinstance(old, ApiKeyRecord):
            self._keys_by_hash.pop(old.hash, None)

    def lookup(self, raw: str) -> ApiKey | None:
        """The grant of a live key; None for a malformed, unknown or revoked key."""
        if not well_formed(raw):
            return None
        record = self._keys_by_hash.get(key_hash(raw))
        if record is None or record.revoked_at is not None:
            return None
        if (
            record.project_id is not None
            and str(record.project_id) not in self.entities[EntityType.PROJECT]
        ):
            return None
        return ApiKey(record.project_id, record.scope)

    def get(self, kind: EntityType, entity_id: str | int) -> Entity | None:
        return self.entities[kind].get(str(entity_id))

    def all(self, kind: EntityType, project_id: int | None = None) -> list[Entity]:
        found = list(self.entities[kind].values())
        if project_id is not None:
            found = [e for e in found if getattr(e, "project_id", None) == project_id]
        return sorted(found, key=lambda e: (str(getattr(e, "slug", "")), str(e.id)))

    def by_slug(self, kind: EntityType, slug: str, project_id: int | None = None) -> Entity | None:
        for entity in self.entities[kind].values():
            if getattr(entity, "slug", None) != slug:
                continue
            if project_id is None or getattr(entity, "project_id", None) == project_id:
                return entity
        return None

    def project(self, project_id: int) -> Project | None:
        found = self.entities[EntityType.PROJECT].get(str(project_id))
        return found if isinstance(found, Project) else None

    def project_by_ping_key(self, ping_key: str) -> Project | None:
        for entity in self.entities[EntityType.PROJECT].values():
            if isinstance(entity, Project) and entity.ping_key == ping_key:
                return entity
        return None

    def monitors(self, project_id: int | None = None) -> list[Monitor]:
        return [m for m in self.all(EntityType.MONITOR, project_id) if isinstance(m, Monitor)]

    def fingerprint(self) -> str:
        """A digest of the whole view: two processes that read the same topic agree."""
        digest = hashlib.sha256()
        for kind in EntityType:
            for entity_id in sorted(self.entities[kind]):
                digest.update(f"{kind}:{entity_id}=".encode())
                digest.update(self.entities[kind][entity_id].model_dump_json().encode())
        return digest.hexdigest()
