"""The control-plane CLI as a user runs it: a subprocess against the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from pulseline.control.entities import EntityType, Monitor
from pulseline.control.store import ControlStore
from pulseline.settings import CommonSettings
from tests.helpers import eventually
from tests.kafka_fixture import REPO

pytestmark = pytest.mark.integration

NIGHTLY = shlex.split(
    'monitors create --project shop --name "Nightly backup" --slug nightly-backup'
    ' --cron "0 2 * * *" --tz Europe/Berlin --grace 600 --max-runtime 3600 --tag db'
)


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pulseline.cli",
            *argv,
            cwd=REPO,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def json(self, *argv: str) -> Any:
        code, out, err = await self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


def test_the_cli_manages_the_control_plane_over_kafka(env: dict[str, str]) -> None:
    cli = Cli(env)

    async def scenario() -> None:
        watcher = ControlStore(CommonSettings.from_env(env))  # another process's view
        await watcher.start()
        try:
            project = await cli.json("projects", "create", "--name", "Shop", "--slug", "shop")
            assert project["slug"] == "shop" and isinstance(project["id"], int)

            monitor = await cli.json(*NIGHTLY)
            returned = time.monotonic()
            while watcher.view.get(EntityType.MONITOR, monitor["id"]) is None:
                assert time.monotonic() - returned < 1.0, "not visible within 1s of the CLI"
                await asyncio.sleep(0.005)
            seen = watcher.view.get(EntityType.MONITOR, monitor["id"])
            assert isinstance(seen, Monitor) and seen.project_id == project["id"]
            assert (seen.schedule.cron, seen.schedule.tz, seen.grace_s) == (
                "0 2 * * *",
                "Europe/Berlin",
                600,
            )

            code, out, err = await cli(
                "keys", "create", "--project", "shop", "--scope", "ingest", "--name", "browser"
            )
            assert code == 0, err
            raw = next(line.split()[1] for line in out.splitlines() if line.startswith("key "))
            assert raw.startswith("pl_ingest_") and "will not be shown again" in err
            assert await until(lambda: watcher.view.lookup(raw) is not None)
            keys = await cli.json("keys", "list", "--project", "shop")
            assert [k["name"] for k in keys] == ["browser"]
            assert raw not in json.dumps(keys) and "hash" not in keys[0]

            listed = await cli.json("monitors", "list", "--project", str(project["id"]))
            assert [m["slug"] for m in listed] == ["nightly-backup"]
            code, table, _ = await cli("monitors", "list", "--project", "shop")
            assert table.splitlines()[0].split()[:3] == ["ID", "SLUG", "NAME"]
            assert "cron 0 2 * * * Europe/Berlin" in table

            paused = await cli.json("monitors", "pause", "nightly-backup", "--project", "shop")
            assert paused["paused"] is True
            assert await until(lambda: _paused(watcher, monitor["id"]))

            code, _, err = await cli("monitors", "get", "no-such", "--project", "shop")
            assert code == 1 and err.strip() == "pulseline: no monitor 'no-such'"

            gone = await cli.json("monitors", "delete", "nightly-backup", "--project", "shop")
            assert gone == {"deleted": "monitor", "id": monitor["id"]}
            assert await until(lambda: watcher.view.get(EntityType.MONITOR, monitor["id"]) is None)
            assert await cli.json("monitors", "list", "--project", "shop") == []
        finally:
            await watcher.stop()

    asyncio.run(scenario())


async def until(predicate: Callable[[], bool], timeout_s: float = 5) -> bool:
    async def check() -> bool:
        return predicate()

    return await eventually(check, timeout_s, every_s=0.01)


def _paused(store: ControlStore, monitor_id: str) -> bool:
    found = store.view.get(EntityType.MONITOR, monitor_id)
    return isinstance(found, Monitor) and found.paused
