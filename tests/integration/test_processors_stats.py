"""The stats agent in a real Faust worker (subprocess) against the real broker."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from pulseline.deadletter import DeadLetterInfo
from pulseline.records.incidents import INCIDENT_SIGNALS, INCIDENTS
from pulseline.records.stats import ANOMALIES, STATS
from pulseline.schemas import EventKind
from pulseline.settings import ProcessorSettings
from pulseline.topics import DEAD_LETTERS, INGEST
from tests.helpers import (
    consume_all,
    dumps,
    latest_project_counts,
    produce,
    stamped,
    start_worker,
    stop_worker,
)

pytestmark = pytest.mark.integration

DEDUP = "anomaly:1:duration:check_in.duration:backup"


async def latest_snapshots(settings: ProcessorSettings) -> dict[str, dict[str, Any]]:
    """The newest snapshot of every series on ``derived.stats`` so far."""
    latest: dict[str, dict[str, Any]] = {}
    for record in await consume_all(
        settings.bootstrap, STATS.physical(settings.topic_prefix), expect=10**6, timeout_s=1.5
    ):
        doc = orjson.loads(record.value)
        series = record.key.decode()
        if doc["version"] >= latest.get(series, {"version": -1})["version"]:
            latest[series] = doc
    return latest


async def wait_for_counts(
    settings: ProcessorSettings,
    wanted: dict[str, int],
    proc: subprocess.Popen[bytes],
    timeout_s: float = 75,
) -> dict[str, dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    latest: dict[str, dict[str, Any]] = {}
    while {k: latest.get(k, {}).get("count") for k in wanted} != wanted:
        assert loop.time() < deadline, f"snapshots so far: {latest}"
        assert proc.poll() is None, "the worker died"
        latest = await latest_snapshots(settings)
    return latest


def check_in(duration_ms: Any) -> dict[str, Any]:
    attributes = {"monitor": "backup", "status": "ok", "duration_ms": duration_ms}
    return stamped("check_in", 1, attributes=attributes)


def test_a_slow_run_is_flagged_stats_match_numpy_and_poison_is_dead_lettered(
    env: dict[str, str], worker: subprocess.Popen[bytes]
) -> None:
    settings = ProcessorSettings.from_env(env)
    prefix = settings.topic_prefix
    durations = [1000.0 + 7 * (i % 4) for i in range(12)]
    slow = check_in(60_000)
    poison = dumps(check_in("very slow"))
    runs = [dumps(check_in(d)) for d in durations]
    gauges = np.random.default_rng(3).lognormal(2, 0.5, 40)
    metrics = [
        dumps(stamped("metric", 1, attributes={"name": "queue", "value": float(v)})) for v in gauges
    ]

    async def scenario() -> None:
        topic = INGEST[EventKind.CHECK_IN].physical(prefix)
        await produce(settings.bootstrap, topic, [*runs, poison, dumps(slow)])
        await produce(settings.bootstrap, INGEST[EventKind.METRIC].physical(prefix), metrics)
        wanted = {"1|check_in.duration|backup": 13, "1|metric|queue": 40}
        latest = await wait_for_counts(settings, wanted, worker)
        duration = latest["1|check_in.duration|backup"]
        assert duration["mean"] == pytest.approx(np.mean([*durations, 60_000.0]), rel=1e-12)
        assert duration["max"] == 60_000.0 and duration["min"] == 1000.0
        queue = latest["1|metric|queue"]
        assert queue["mean"] == pytest.approx(np.mean(gauges), rel=1e-12)
        assert queue["stddev"] == pytest.approx(np.std(gauges, ddof=1), rel=1e-9)

        anomalies = await consume_all(settings.bootstrap, ANOMALIES.physical(prefix), expect=1)
        assert len(anomalies) == 1
        anomaly = orjson.loads(anomalies[0].value)
        assert (anomaly["rule"], anomaly["event_id"]) == ("duration", slow["event_id"])
        assert anomaly["explanation"].startswith("took 60.0 s, ")
        assert anomaly["explanation"].endswith("above the mean 1.0 s (median 1.0 s, n=12)")

        signals = [
            orjson.loads(s.value)
            for s in await consume_all(
                settings.bootstrap, INCIDENT_SIGNALS.physical(prefix), expect=1
            )
        ]
        ours = [s for s in signals if s["dedup_key"] == DEDUP]
        assert len(ours) == 1
        assert (ours[0]["action"], ours[0]["kind"], ours[0]["severity"]) == (
            "open",
            "duration_anomaly",
            "warning",
        )
        assert ours[0]["explanation"] == anomaly["explanation"]

        dead = await consume_all(
            settings.bootstrap, DEAD_LETTERS.physical(prefix), expect=10**6, timeout_s=4
        )
        mine = [
            d for d in dead if DeadLetterInfo.from_headers(d.headers).stage == "route_by_series"
        ]
        assert [d.value for d in mine] == [poison]
        info = DeadLetterInfo.from_headers(mine[0].headers)
        assert "duration_ms" in info.reason and info.offset == 12

    asyncio.run(scenario())


def test_a_restarted_worker_resumes_from_the_changelog_without_double_counting(
    env: dict[str, str], tmp_path: Path
) -> None:
    settings = ProcessorSettings.from_env(env)
    topic = INGEST[EventKind.METRIC].physical(settings.topic_prefix)
    values = [float(v) for v in range(1, 41)]
    docs = [dumps(stamped("metric", 1, attributes={"name": "queue", "value": v})) for v in values]
    series = "1|metric|queue"

    async def scenario() -> None:
        proc = start_worker(env, tmp_path / "worker.log")
        try:
            await produce(settings.bootstrap, topic, docs[:30])
            await wait_for_counts(settings, {series: 30}, proc)
        finally:
            stop_worker(proc)
        proc = start_worker(env, tmp_path / "worker.log")
        try:
            await produce(settings.bootstrap, topic, docs[30:])
            latest = await wait_for_counts(settings, {series: 40}, proc)
            await asyncio.sleep(2)
            latest = await latest_snapshots(settings)
        finally:
            stop_worker(proc)
        assert latest[series]["count"] == 40
        assert latest[series]["mean"] == pytest.approx(np.mean(values), rel=1e-12)

    asyncio.run(scenario())


@pytest.mark.faults
def test_a_worker_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
    env: dict[str, str], tmp_path: Path
) -> None:
    settings = ProcessorSettings.from_env(env)
    topic = INGEST[EventKind.METRIC].physical(settings.topic_prefix)
    total, first = 12_000, 9_000
    ts = datetime.now(UTC).replace(second=30, microsecond=0).isoformat()
    values = [float(i % 97) for i in range(total)]
    docs = [
        dumps(stamped("metric", 3, timestamp=ts, attributes={"name": "depth", "value": v}))
        for v in values
    ]
    series = "3|metric|depth"

    async def scenario() -> None:
        log = tmp_path / "worker.log"
        proc = start_worker(env, log)
        try:
            await produce(settings.bootstrap, topic, docs[:first])
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            seen = 0
            while seen == 0:
                assert loop.time() < deadline and proc.poll() is None, "no snapshot before kill"
                latest = await latest_snapshots(settings)
                seen = int(latest.get(series, {}).get("count", 0))
        finally:
            proc.kill()  # SIGKILL: no commit, no flush, no goodbye
            proc.wait()
        assert seen < first, f"the worker had finished ({seen}) before the kill; not mid-stream"
        proc = start_worker(env, log)
        try:
            await produce(settings.bootstrap, topic, docs[first:])
            # The killed worker stays in the group until its session times out (60 s).
            await wait_for_counts(settings, {series: total}, proc, timeout_s=150)
            await asyncio.sleep(3)  # a double count would show as a later, larger snapshot
            latest = await latest_snapshots(settings)
            counts = await latest_project_counts(settings.bootstrap, settings.topic_prefix)
        finally:
            stop_worker(proc)
        assert latest[series]["count"] == total
        assert latest[series]["mean"] == pytest.approx(np.mean(values), rel=1e-9)
        assert latest[series]["stddev"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)
        assert counts[(3, "metric")] == total

    asyncio.run(scenario())


def test_output_size_drop_slow_endpoint_and_error_spike_open_incidents(
    env: dict[str, str], worker: subprocess.Popen[bytes]
) -> None:
    settings = ProcessorSettings.from_env(env)
    prefix = settings.topic_prefix

    def export(size: float) -> bytes:
        attributes = {"monitor": "export", "status": "ok", "output_size": size}
        return dumps(stamped("check_in", 1, attributes=attributes))

    sizes = [1000.0, 1010.0, 990.0, 1005.0, 995.0, 1000.0, 1002.0, 100.0]
    slow = stamped("transaction", 1, attributes={"route": "/report", "duration_ms": 6000})
    errors = [
        dumps(stamped("error", 1, attributes={"message": "boom", "type": "RuntimeError"}))
        for _ in range(12)
    ]

    async def scenario() -> None:
        checks = INGEST[EventKind.CHECK_IN].physical(prefix)
        await produce(settings.bootstrap, checks, [export(s) for s in sizes])
        await produce(
            settings.bootstrap, INGEST[EventKind.TRANSACTION].physical(prefix), [dumps(slow)]
        )
        await produce(settings.bootstrap, INGEST[EventKind.ERROR].physical(prefix), errors)
        wanted = {"output_size_anomaly", "slow_endpoint", "error_spike"}
        # Every open record's explanation, per kind: the slow request's incident is updated
        # with the slow window's explanation too when the test's 5 min window closes.
        found: dict[str, list[str]] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while set(found) != wanted:
            assert loop.time() < deadline, f"incidents so far: {sorted(found)}"
            assert worker.poll() is None, "the worker died"
            found = {}
            for record in await consume_all(
                settings.bootstrap, INCIDENTS.physical(prefix), expect=10**6, timeout_s=1.5
            ):
                doc = orjson.loads(record.value)
                if doc["kind"] in wanted and doc["state"] == "open":
                    found.setdefault(doc["kind"], []).append(doc["explanation"])
        assert "90%" in found["output_size_anomaly"][0]
        assert found["slow_endpoint"][0].startswith("took 6.0 s, over the 5.0 s"), found
        assert found["error_spike"][0].startswith("10 errors in the 5 min window")

    asyncio.run(scenario())
