"""Control-plane operations with their rules; shared by the admin API and the CLI.

Rules: slugs are unique per project (projects: globally); an entity's project must exist;
a rule's channels and monitors must belong to its project; deleting a project deletes
everything that belongs to it; a key is shown once, at creation, and stored as a hash.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from pulseline.control.entities import (
    MODELS,
    AlertRule,
    ApiKeyRecord,
    Entity,
    EntityType,
    Project,
)
from pulseline.control.errors import Conflict, Invalid, NotFound
from pulseline.control.view import ControlView
from pulseline.keys import Scope, display_prefix, key_hash, new_key

OWNED = (EntityType.API_KEY, EntityType.MONITOR, EntityType.CHANNEL, EntityType.RULE)


def _validate(kind: EntityType, data: dict[str, Any]) -> Entity:
    try:
        return MODELS[kind].model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None


class Store(Protocol):
    """What the service needs of a store: ``ControlStore``, or a test's in-memory twin."""

    @property
    def view(self) -> ControlView: ...

    async def put(self, entity: Entity) -> None: ...

    async def delete(self, kind: EntityType, entity_id: str | int) -> None: ...


class ControlService:
    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def view(self) -> ControlView:
        return self.store.view

    def get(self, kind: EntityType, entity_id: str | int, project_id: int | None = None) -> Entity:
        entity = self.view.get(kind, entity_id)
        if entity is None or (
            project_id is not None and getattr(entity, "project_id", entity.id) != project_id
        ):
            raise NotFound(f"no {kind.value} {entity_id}")
        return entity

    def find(self, kind: EntityType, ref: str, project_id: int | None = None) -> Entity:
        """By id, or by slug (within ``project_id`` for owned entities)."""
        entity = self.view.get(kind, ref) or self.view.by_slug(kind, ref, project_id)
        if entity is None:
            raise NotFound(f"no {kind.value} {ref!r}")
        return self.get(kind, entity.id, project_id if kind is not EntityType.PROJECT else None)

    def _check_refs(self, entity: Entity) -> None:
        project_id = getattr(entity, "project_id", None)
        if (
            not isinstance(entity, Project)
            and project_id is not None
            and self.view.project(project_id) is None
        ):
            raise NotFound(f"no project {project_id}")
        slug = getattr(entity, "slug", None)
        if slug is not None:
            kind = next(k for k, m in MODELS.items() if isinstance(entity, m))
            scope = None if isinstance(entity, Project) else project_id
            taken = self.view.by_slug(kind, slug, scope)
            if taken is not None and str(taken.id) != str(entity.id):
                raise Conflict(f"the slug {slug!r} is taken by {kind.value} {taken.id}")
        if isinstance(entity, AlertRule):
            for channel in entity.channels:
                self.get(EntityType.CHANNEL, channel, entity.project_id)
            for monitor in entity.monitors:
                self.get(EntityType.MONITOR, monitor, entity.project_id)

    async def _save(self, entity: Entity) -> Entity:
        self._check_refs(entity)
        await self.store.put(entity)
        return entity

    async def create(self, kind: EntityType, data: dict[str, Any]) -> Entity:
        """Create a project, monitor, channel or rule (keys: ``create_key``)."""
        data = dict(data)
        if kind is EntityType.PROJECT:
            ids = [int(i) for i in self.view.entities[EntityType.PROJECT]]
            data.setdefault("id", max(ids, default=0) + 1)
            data.setdefault("ping_key", secrets.token_urlsafe(16))
        elif kind is EntityType.API_KEY:
            raise Invalid([{"field": "type", "problem": "create keys with create_key"}])
        else:
            data.setdefault("id", str(uuid.uuid4()))
        return await self._save(_validate(kind, data))

    async def update(
        self,
        kind: EntityType,
        entity_id: str | int,
        changes: dict[str, Any],
        project_id: int | None = None,
    ) -> Entity:
        current = self.get(kind, entity_id, project_id)
        fixed = {"id", "project_id", "hash", "prefix", "created_at"}
        if kind is EntityType.API_KEY:  # a key's grant never changes; revoke and mint instead
            fixed |= {"scope", "revoked_at"}
        protected = fixed & set(changes)
        if protected:
            raise Invalid([{"field": f, "problem": "cannot be changed"} for f in protected])
        merged = {**current.model_dump(mode="json"), **changes}
        return await self._save(_validate(kind, merged))

    async def delete(
        self, kind: EntityType, entity_id: str | int, project_id: int | None = None
    ) -> None:
        entity = self.get(kind, entity_id, project_id)
        if isinstance(entity, Project):
            for owned in OWNED:
                for child in self.view.all(owned, entity.id):
                    await self.store.delete(owned, child.id)
        await self.store.delete(kind, entity.id)

    async def create_key(
        self, project_id: int | None, scope: Scope, name: str, raw: str | None = None
    ) -> tuple[ApiKeyRecord, str]:
        """Mint a key (or register ``raw``); the raw key is returned here and never again."""
        raw = raw or new_key(scope)
        record = _validate(
            EntityType.API_KEY,
            {
                "id": str(uuid.uuid4()),
                "project_id": project_id,
                "scope": scope,
                "name": name,
                "prefix": display_prefix(raw),
                "hash": key_hash(raw),
                "created_at": datetime.now(UTC).isoformat(),
            },
        )
        if self.view.lookup(raw) is not None:
            raise Conflict("this key is already registered")
        await self._save(record)
        assert isinstance(record, ApiKeyRecord)
        return record, raw

    async def revoke_key(self, key_id: str, project_id: int | None = None) -> ApiKeyRecord:
        record = self.get(EntityType.API_KEY, key_id, project_id)
        assert isinstance(record, ApiKeyRecord)
        if record.revoked_at is not None:
            return record
        revoked = record.model_copy(update={"revoked_at": datetime.now(UTC)})
        await self.store.put(revoked)
        return revoked
