"""Control entities reach ClickHouse dimension tables; no raw key or secret does."""

from __future__ import annotations

import asyncio

import pytest

from pulseline.control.entities import EntityType
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.keys import Scope
from pulseline.settings import StorageSettings
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.sink import Sink
from tests.helpers import eventually

pytestmark = pytest.mark.integration

WEBHOOK = "https://hooks.example.invalid/T000/B000/XXXXSECRETXXXX"


def test_entities_are_mirrored_and_deletes_follow(storage_env: dict[str, str]) -> None:
    settings = StorageSettings.from_env(storage_env)
    engine = Engine.open(settings)
    migrate(engine)
    db = settings.clickhouse_database

    async def scenario() -> None:
        store = ControlStore(settings)
        await store.start()
        service = ControlService(store)
        project = await service.create(EntityType.PROJECT, {"name": "Shop", "slug": "shop"})
        monitor = await service.create(
            EntityType.MONITOR,
            {
                "project_id": project.id,
                "name": "Backup",
                "slug": "backup",
                "schedule": {"period_s": 3600},
            },
        )
        await service.create(
            EntityType.CHANNEL,
            {
                "project_id": project.id,
                "name": "Ops",
                "slug": "ops",
                "type": "slack",
                "config": {"url": WEBHOOK},
                "secret": "whsec_topsecret",
            },
        )
        _, raw = await service.create_key(project.id, Scope.INGEST, "browser")
        await service.delete(EntityType.MONITOR, monitor.id)

        sink = Sink(settings, engine, StorageMetrics())
        await sink.start()
        task = asyncio.create_task(sink.run())

        async def mirrored() -> bool:
            rows = await engine.rows(f"SELECT name FROM {db}.dim_projects")
            keys = await engine.rows(f"SELECT prefix FROM {db}.dim_api_keys")
            return rows == [{"name": "Shop"}] and len(keys) == 1

        assert await eventually(mirrored, timeout_s=20)
        assert await engine.rows(f"SELECT * FROM {db}.dim_monitors") == []
        channels = await engine.rows(f"SELECT channel_type FROM {db}.dim_channels")
        assert channels == [{"channel_type": "slack"}]

        tables = await engine.rows(
            "SELECT name FROM system.tables WHERE database = {db:String} "
            "AND engine NOT IN ('View', 'MaterializedView')",
            {"db": db},
        )
        dump = ""
        for t in tables:
            result = await engine.run(
                engine.client.raw_query, f"SELECT * FROM {db}.`{t['name']}` FORMAT TSV"
            )
            dump += result.decode(errors="replace")
        assert "Shop" in dump  # the scan does read the mirrored rows
        for secret in (raw, WEBHOOK, "whsec_topsecret"):
            assert secret not in dump
        await sink.stop()
        await task
        await sink.close()
        await store.stop()

    asyncio.run(scenario())
    engine.close()
