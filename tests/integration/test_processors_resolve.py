"""Auto-resolve of anomaly incidents in a real Faust worker (subprocess) against the broker."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import orjson
import pytest

from pulseline.records.incidents import INCIDENT_SIGNALS, INCIDENTS
from pulseline.records.stats import STATS
from pulseline.schemas import EventKind
from pulseline.settings import ProcessorSettings
from pulseline.topics import INGEST
from tests.helpers import consume_all, dumps, produce, stamped

pytestmark = pytest.mark.integration

DEDUP = "anomaly:1:output_size:check_in.output_size:export"
SERIES = "1|check_in.output_size|export"


def export(size: float) -> bytes:
    attributes = {"monitor": "export", "status": "ok", "output_size": size}
    return dumps(stamped("check_in", 1, attributes=attributes))


async def records(settings: ProcessorSettings, topic: str) -> list[dict[str, Any]]:
    found = await consume_all(settings.bootstrap, topic, expect=10**6, timeout_s=1.5)
    return [orjson.loads(r.value) for r in found]


async def until(
    what: str, check: Any, worker: subprocess.Popen[bytes], timeout_s: float
) -> dict[str, Any]:
    """Poll ``check()`` (a coroutine returning a record or None) until it finds one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        assert worker.poll() is None, "the worker died"
        found = await check()
        if found is not None:
            return dict(found)
        assert loop.time() < deadline, f"no {what} within {timeout_s} s"


def test_an_output_size_drop_opens_an_incident_and_the_next_normal_run_resolves_it(
    env: dict[str, str], worker: subprocess.Popen[bytes]
) -> None:
    settings = ProcessorSettings.from_env(env)
    prefix = settings.topic_prefix
    checks = INGEST[EventKind.CHECK_IN].physical(prefix)
    incidents, signals = INCIDENTS.physical(prefix), INCIDENT_SIGNALS.physical(prefix)
    sizes = [1000.0, 1010.0, 990.0, 1005.0, 995.0, 1000.0, 1002.0]

    async def incident(state: str) -> dict[str, Any] | None:
        docs = await records(settings, incidents)
        return next((d for d in docs if (d["dedup_key"], d["state"]) == (DEDUP, state)), None)

    async def folded(count: int) -> dict[str, Any] | None:
        for doc in await records(settings, STATS.physical(prefix)):
            if doc["family"] == "check_in.output_size" and doc["count"] >= count:
                return doc
        return None

    async def scenario() -> None:
        await produce(settings.bootstrap, checks, [export(s) for s in [*sizes, 100.0]])
        opened = await until("open incident", lambda: incident("open"), worker, 45)
        assert "90% below the mean" in opened["explanation"]

        await produce(settings.bootstrap, checks, [export(1000.0)])  # the next run: normal
        resolved = await until("resolved incident", lambda: incident("resolved"), worker, 30)
        assert resolved["id"] == opened["id"]
        assert resolved["resolve_reason"] == (
            "back to normal: output 1.0 kB (mean 872 B of the last 7 runs)"
        )
        assert resolved["resolved_at"] is not None

        # Another normal run: the series no longer fires, so it sends no second resolve.
        await produce(settings.bootstrap, checks, [export(1001.0)])
        await until("snapshot of all 10 runs", lambda: folded(10), worker, 30)
        await asyncio.sleep(1)
        ours = [s for s in await records(settings, signals) if s["dedup_key"] == DEDUP]
        assert [s["action"] for s in ours] == ["open", "resolve"]
        assert ours[1]["reason"] == resolved["resolve_reason"]

    asyncio.run(scenario())
