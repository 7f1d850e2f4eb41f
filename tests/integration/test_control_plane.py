"""The control plane against the real broker: materialise, read-your-writes, delete, restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from pulseline.control.entities import EntityType, Monitor
from pulseline.control.errors import Conflict, Invalid, NotFound
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.keys import Scope
from pulseline.settings import CommonSettings
from pulseline.topics import CONTROL
from tests.helpers import consume_all

pytestmark = pytest.mark.integration

WATCHER = """
import asyncio, sys, time
from pulseline.control.store import ControlStore
from pulseline.control.entities import EntityType
from pulseline.settings import CommonSettings

async def main():
    store = ControlStore(CommonSettings.from_env())
    await store.start()
    print("ready", flush=True)
    while store.view.by_slug(EntityType.MONITOR, sys.argv[1]) is None:
        await asyncio.sleep(0.005)
    print("seen", time.time(), flush=True)
    while store.view.by_slug(EntityType.MONITOR, sys.argv[1]) is not None:
        await asyncio.sleep(0.005)
    print("gone", time.time(), flush=True)
    await store.stop()

asyncio.run(main())
"""


def test_a_second_process_sees_a_new_monitor_within_a_second(env: dict[str, str]) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, "nightly-backup"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None
    assert watcher.stdout.readline().strip() == "ready"

    async def scenario() -> tuple[float, float]:
        store = ControlStore(CommonSettings.from_env(env))
        await store.start()
        service = ControlService(store)
        project = await service.create(EntityType.PROJECT, {"name": "Shop", "slug": "shop"})
        written = time.time()
        monitor = await service.create(
            EntityType.MONITOR,
            {
                "project_id": project.id,
                "name": "Nightly backup",
                "slug": "nightly-backup",
                "schedule": {"cron": "0 2 * * *", "tz": "Europe/Berlin"},
            },
        )
        assert isinstance(monitor, Monitor)
        assert store.view.get(EntityType.MONITOR, monitor.id) == monitor  # read-your-writes
        seen = float(watcher.stdout.readline().split()[1])  # type: ignore[union-attr]
        deleted = time.time()
        await service.delete(EntityType.MONITOR, monitor.id)
        gone = float(watcher.stdout.readline().split()[1])  # type: ignore[union-attr]
        await store.stop()
        return seen - written, gone - deleted

    to_see, to_forget = asyncio.run(scenario())
    watcher.wait(timeout=10)
    assert to_see < 1.0 and to_forget < 1.0, (to_see, to_forget)


def test_rules_conflicts_and_restart_rebuild_the_same_view(env: dict[str, str]) -> None:
    settings = CommonSettings.from_env(env)

    async def scenario() -> None:
        store = ControlStore(settings)
        await store.start()
        service = ControlService(store)
        project = await service.create(EntityType.PROJECT, {"name": "A", "slug": "a"})
        with pytest.raises(Conflict):
            await service.create(EntityType.PROJECT, {"name": "A2", "slug": "a"})
        with pytest.raises(Invalid, match="schedule"):
            await service.create(
                EntityType.MONITOR,
                {"project_id": project.id, "name": "m", "slug": "m", "schedule": {}},
            )
        with pytest.raises(NotFound):
            await service.create(
                EntityType.MONITOR,
                {"project_id": 999, "name": "m", "slug": "m", "schedule": {"period_s": 60}},
            )
        channel = await service.create(
            EntityType.CHANNEL,
            {
                "project_id": project.id,
                "name": "ops",
                "slug": "ops",
                "type": "webhook",
                "config": {"url": "https://example.invalid/hook"},
                "secret": "whsec_x",
            },
        )
        await service.create(
            EntityType.RULE,
            {"project_id": project.id, "name": "all", "slug": "all", "channels": [channel.id]},
        )
        record, raw = await service.create_key(project.id, Scope.READ, "analyst")
        assert store.view.lookup(raw) is not None
        await service.revoke_key(record.id)
        assert store.view.lookup(raw) is None
        _, ingest_raw = await service.create_key(project.id, Scope.INGEST, "browser")
        fingerprint = store.view.fingerprint()
        await store.stop()

        again = ControlStore(settings)
        await again.start()
        assert again.view.fingerprint() == fingerprint
        assert again.view.lookup(ingest_raw) is not None
        await ControlService(again).delete(EntityType.PROJECT, project.id)
        assert again.view.all(EntityType.RULE) == []
        assert again.view.all(EntityType.API_KEY) == []
        assert again.view.lookup(ingest_raw) is None
        await again.stop()

        records = await consume_all(
            settings.bootstrap, CONTROL.physical(settings.topic_prefix), expect=10**6, timeout_s=3
        )
        blob = b"".join((r.key or b"") + (r.value or b"") for r in records)
        assert raw.encode() not in blob and ingest_raw.encode() not in blob
        assert len(records) >= 8

    asyncio.run(scenario())


SEED = """
projects:
  - slug: shop
    id: 7
    name: Shop
    tier: pro
    keys:
      - {name: browser, scope: ingest, key: "${SHOP_KEY}"}
      - {name: minted, scope: read}
    channels:
      - {slug: ops, name: Ops, type: webhook, config: {url: "https://example.invalid"},
         secret: "${OPS_SECRET}"}
    monitors:
      - {slug: backup, name: Backup, schedule: {cron: "30 2 * * *", tz: Europe/Berlin}}
    rules:
      - {slug: all, name: All, channels: [ops]}
"""


def test_seeding_the_same_file_twice_writes_nothing_new(env: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pulseline.control import seed
    from pulseline.keys import new_key

    shop_key = new_key(Scope.INGEST)
    path = tmp_path / "pulseline.yaml"
    path.write_text(SEED)
    variables = {"SHOP_KEY": shop_key, "OPS_SECRET": "whsec_abc"}
    settings = CommonSettings.from_env(env)

    async def scenario() -> None:
        store = ControlStore(settings)
        await store.start()
        service = ControlService(store)
        first = await seed.apply(service, seed.load(path, variables))
        assert first.writes == 6 and len(first.minted_keys) == 1
        assert store.view.lookup(shop_key) is not None
        assert store.view.project(7) is not None
        offset = store.view.offset
        second = await seed.apply(service, seed.load(path, variables))
        assert second.writes == 0 and second.unchanged == 6
        assert store.view.offset == offset
        await store.stop()

    asyncio.run(scenario())
    with pytest.raises(seed.SeedError, match="OPS_SECRET"):
        seed.load(path, {"SHOP_KEY": shop_key})
