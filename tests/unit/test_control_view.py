from datetime import UTC, datetime

import orjson
import pytest

from pulseline.control.entities import (
    ApiKeyRecord,
    ControlRecord,
    Entity,
    EntityType,
    Monitor,
    Project,
    Schedule,
    record_key,
    type_of,
)
from pulseline.control.view import ControlView
from pulseline.keys import ApiKey, Scope, display_prefix, key_hash, new_key

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def put(view: ControlView, entity: Entity, offset: int) -> None:
    kind = type_of(entity)
    record = ControlRecord(
        type=kind, id=str(entity.id), data=entity.model_dump(mode="json"), updated_at=NOW
    )
    view.apply(
        record_key(kind, entity.id).encode(), orjson.dumps(record.model_dump(mode="json")), offset
    )


def project(pid: int = 1, slug: str = "shop") -> Project:
    return Project(id=pid, name=slug.title(), slug=slug, ping_key="p" * 20)


def key_record(raw: str, project_id: int | None = 1, revoked: bool = False) -> ApiKeyRecord:
    scope = Scope(raw.split("_")[1])
    return ApiKeyRecord(
        id=f"k-{raw[-6:]}",
        project_id=project_id,
        scope=scope,
        name="k",
        prefix=display_prefix(raw),
        hash=key_hash(raw),
        created_at=NOW,
        revoked_at=NOW if revoked else None,
    )


def test_a_live_key_resolves_to_its_project_and_scope() -> None:
    view, raw = ControlView(), new_key(Scope.INGEST)
    put(view, project(), 0)
    put(view, key_record(raw), 1)
    assert view.lookup(raw) == ApiKey(1, Scope.INGEST)


@pytest.mark.parametrize("case", ["revoked", "deleted", "project deleted", "unknown"])
def test_a_dead_key_resolves_to_nothing(case: str) -> None:
    view, raw = ControlView(), new_key(Scope.READ)
    put(view, project(), 0)
    put(view, key_record(raw, revoked=case == "revoked"), 1)
    if case == "deleted":
        view.apply(record_key(EntityType.API_KEY, f"k-{raw[-6:]}").encode(), None, 2)
    if case == "project deleted":
        view.apply(record_key(EntityType.PROJECT, 1).encode(), None, 2)
    probe = new_key(Scope.READ) if case == "unknown" else raw
    assert view.lookup(probe) is None


def test_a_later_record_replaces_an_earlier_one() -> None:
    view = ControlView()
    put(view, project(), 0)
    put(view, project().model_copy(update={"name": "Renamed"}), 1)
    assert view.project(1) is not None and view.project(1).name == "Renamed"  # type: ignore[union-attr]
    assert view.offset == 1


def test_unreadable_records_are_listed_not_dropped_silently() -> None:
    view = ControlView()
    view.apply(b"project:1", b"{not json", 0)
    view.apply(b"gadget:1", b"{}", 1)
    view.apply(
        b"monitor:m1",
        orjson.dumps(
            {
                "schema_version": 1,
                "type": "monitor",
                "id": "m1",
                "data": {"id": "m1"},
                "updated_at": NOW.isoformat(),
            }
        ),
        2,
    )
    assert [u.offset for u in view.unreadable] == [0, 1, 2]
    assert view.all(EntityType.MONITOR) == []


def test_two_views_of_the_same_records_agree() -> None:
    a, b = ControlView(), ControlView()
    monitor = Monitor(
        id="m1", project_id=1, name="Backup", slug="backup", schedule=Schedule(period_s=3600)
    )
    for view in (a, b):
        put(view, project(), 0)
        put(view, monitor, 1)
    assert a.fingerprint() == b.fingerprint()
    put(b, monitor.model_copy(update={"paused": True}), 2)
    assert a.fingerprint() != b.fingerprint()


def test_lookups_by_slug_are_scoped_to_the_project() -> None:
    view = ControlView()
    put(view, project(1, "a"), 0)
    put(view, project(2, "b"), 1)
    for pid in (1, 2):
        put(
            view,
            Monitor(
                id=f"m{pid}",
                project_id=pid,
                name="x",
                slug="backup",
                schedule=Schedule(period_s=60),
            ),
            1 + pid,
        )
    assert view.by_slug(EntityType.MONITOR, "backup", 2).id == "m2"  # type: ignore[union-attr]
    assert [m.id for m in view.monitors(1)] == ["m1"]
