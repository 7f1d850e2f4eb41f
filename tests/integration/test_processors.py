"""A real Faust worker (subprocess) against the real broker."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime

import orjson
import pytest

from pulseline.deadletter import DeadLetterInfo
from pulseline.schemas import EventKind
from pulseline.settings import ProcessorSettings
from pulseline.topics import DEAD_LETTERS, INGEST, PROJECT_COUNTS
from tests.helpers import consume_all, dumps, produce, stamped

pytestmark = pytest.mark.integration


def test_it_counts_events_per_project_and_dead_letters_poison(
    env: dict[str, str], worker: subprocess.Popen[bytes]
) -> None:
    settings = ProcessorSettings.from_env(env)
    prefix = settings.topic_prefix
    minute = datetime.now(UTC).replace(second=30, microsecond=0)
    ts = minute.isoformat()
    pageviews = [dumps(stamped("pageview", 1, timestamp=ts)) for _ in range(40)]
    errors = [dumps(stamped("error", 2, timestamp=ts)) for _ in range(7)]
    poison = orjson.dumps({"project_id": 1, "kind": "pageview"})  # no timestamp

    async def scenario() -> None:
        await produce(
            settings.bootstrap,
            INGEST[EventKind.PAGEVIEW].physical(prefix),
            [*pageviews[:20], poison, *pageviews[20:]],
        )
        await produce(settings.bootstrap, INGEST[EventKind.ERROR].physical(prefix), errors)
        latest: dict[tuple[int, str], int] = {}
        deadline = asyncio.get_running_loop().time() + 60
        while latest != {(1, "pageview"): 40, (2, "error"): 7}:
            assert asyncio.get_running_loop().time() < deadline, f"counts so far: {latest}"
            assert worker.poll() is None, "the worker died"
            for record in await consume_all(
                settings.bootstrap, PROJECT_COUNTS.physical(prefix), expect=10**6, timeout_s=1.5
            ):
                doc = orjson.loads(record.value)
                assert doc["minute"] == minute.replace(second=0).isoformat()
                key = (doc["project_id"], doc["kind"])
                latest[key] = max(latest.get(key, 0), doc["count"])
        # Other agents judge these bare events too (an error without a message cannot be
        # grouped); this test is about the counting stage's dead letters.
        letters = await consume_all(
            settings.bootstrap, DEAD_LETTERS.physical(prefix), expect=10**6, timeout_s=3
        )
        dead = [
            d for d in letters if DeadLetterInfo.from_headers(d.headers).stage == "route_by_project"
        ]
        assert [d.value for d in dead] == [poison]
        info = DeadLetterInfo.from_headers(dead[0].headers)
        assert "timestamp" in info.reason
        assert info.offset == 20

    asyncio.run(scenario())
