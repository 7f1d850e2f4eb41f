"""What ``pulseline run`` applies at start: the demo project and the optional seed file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulseline.control import seed
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.keys import DemoKeys, Scope
from pulseline.settings import CommonSettings


def demo_seed(keys: DemoKeys) -> list[dict[str, Any]]:
    return [
        {
            "id": keys.project_id,
            "slug": "demo",
            "name": "Demo",
            "tier": "pro",
            "keys": [
                {"name": "demo ingest", "scope": "ingest", "key": keys.ingest},
                {"name": "demo read", "scope": "read", "key": keys.read},
            ],
        }
    ]


async def bootstrap(
    settings: CommonSettings, keys: DemoKeys, seed_file: Path | None, env: Mapping[str, str]
) -> seed.SeedReport:
    store = ControlStore(settings)
    await store.start()
    try:
        service = ControlService(store)
        projects = demo_seed(keys)
        if seed_file is not None:
            projects += seed.load(seed_file, env)
        report = await seed.apply(service, projects)
        if service.view.lookup(keys.admin) is None:
            await service.create_key(None, Scope.ADMIN, "demo admin", keys.admin)
            report.created.append("admin key demo admin")
        else:
            report.unchanged += 1
        return report
    finally:
        await store.stop()
