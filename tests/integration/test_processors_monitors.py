"""Cron monitors and the incident book in a real Faust worker (subprocess) on a real broker."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pulseline.control.entities import EntityType, Monitor, Project
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.deadletter import DeadLetterInfo
from pulseline.records.incidents import INCIDENTS
from pulseline.records.monitors import MONITOR_STATES, RUNS
from pulseline.schemas import EventKind
from pulseline.settings import CommonSettings
from pulseline.topics import DEAD_LETTERS, INGEST
from tests.helpers import stamped, start_worker, stop_worker

pytestmark = pytest.mark.integration

WAIT_S = 90.0


async def provision(settings: CommonSettings) -> tuple[Project, Monitor, Monitor]:
    """A project, a monitor with a long grace and one with none, on the control topic."""
    store = ControlStore(settings)
    await store.start()
    try:
        service = ControlService(store)
        project = await service.create(EntityType.PROJECT, {"name": "ops", "slug": "ops"})
        assert isinstance(project, Project)
        monitors = []
        for slug, grace in (("backup", 600), ("report", 0)):
            monitor = await service.create(
                EntityType.MONITOR,
                {
                    "project_id": project.id,
                    "name": slug.title(),
                    "slug": slug,
                    "schedule": {"period_s": 60},
                    "grace_s": grace,
                },
            )
            assert isinstance(monitor, Monitor)
            monitors.append(monitor)
        return project, monitors[0], monitors[1]
    finally:
        await store.stop()


def check_in(project: Project, slug: str, status: str, at: datetime, **attrs: Any) -> bytes:
    stamp = at.isoformat()
    doc = stamped(
        "check_in",
        project.id,
        timestamp=stamp,
        received_at=stamp,
        attributes={"monitor": slug, "status": status, **attrs},
    )
    return orjson.dumps(doc)


class Tail:
    """Everything seen on some topics since the start, read by one consumer."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        self.seen: dict[str, list[Any]] = {t: [] for t in topics}

    async def until(
        self, topic: str, found: Callable[[list[Any]], bool], proc: subprocess.Popen[bytes]
    ) -> list[Any]:
        deadline = time.monotonic() + WAIT_S
        while not found(self.seen[topic]):
            assert time.monotonic() < deadline, f"waited {WAIT_S}s on {topic}"
            assert proc.poll() is None, "the worker died"
            for tp, records in (await self.consumer.getmany(timeout_ms=200)).items():
                self.seen[tp.topic] += records
        return self.seen[topic]


def docs(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def incident(records: list[Any], key: str, state: str) -> dict[str, Any] | None:
    return next((d for d in docs(records) if d["dedup_key"] == key and d["state"] == state), None)


def test_monitors_turn_check_ins_and_silence_into_runs_states_and_incidents(
    env: dict[str, str], worker: subprocess.Popen[bytes]
) -> None:
    settings = CommonSettings.from_env(env)
    prefix = settings.topic_prefix
    project, backup, report = asyncio.run(provision(settings))
    topics = [t.physical(prefix) for t in (INCIDENTS, RUNS, MONITOR_STATES, DEAD_LETTERS)]
    incidents_t, runs_t, states_t, dead_t = topics
    failed_key = f"{project.id}:monitor_failed:monitor:{backup.id}"
    missed_key = f"{project.id}:monitor_missed:monitor:{report.id}"
    rid = str(uuid.uuid4())

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
        tail = Tail(settings.bootstrap, topics)
        await producer.start()
        await tail.consumer.start()
        source = INGEST[EventKind.CHECK_IN].physical(prefix)

        async def send(slug: str, value: bytes) -> None:
            await producer.send_and_wait(source, value, key=f"{project.id}:{slug}".encode())

        try:
            now = datetime.now(UTC)
            await send("backup", b"{not json")
            await send("backup", check_in(project, "backup", "start", now, run_id=rid))
            finish = now + timedelta(seconds=3)
            failure = check_in(project, "backup", "fail", finish, run_id=rid, exit_code=1)
            await send("backup", failure)
            await send("ghost", check_in(project, "ghost", "ok", now))
            found = await tail.until(
                incidents_t, lambda rs: incident(rs, failed_key, "open") is not None, worker
            )
            opened = incident(found, failed_key, "open")
            assert opened is not None and opened["kind"] == "monitor_failed"

            await send("backup", check_in(project, "backup", "ok", datetime.now(UTC)))
            found = await tail.until(
                incidents_t, lambda rs: incident(rs, failed_key, "resolved") is not None, worker
            )
            resolved = incident(found, failed_key, "resolved")
            assert resolved is not None and resolved["resolve_reason"] == "recovered"
            assert resolved["id"] == opened["id"]

            # Its last ping 52 s ago on a 60 s period with no grace: due 8 s from now.
            last_ping = datetime.now(UTC) - timedelta(seconds=52)
            due = last_ping + timedelta(seconds=60)
            await send("report", check_in(project, "report", "ok", last_ping))
            found = await tail.until(
                incidents_t, lambda rs: incident(rs, missed_key, "open") is not None, worker
            )
            missed = incident(found, missed_key, "open")
            assert missed is not None
            lag = (datetime.fromisoformat(missed["opened_at"]) - due).total_seconds()
            print(f"missed-run detection lag behind the due time: {lag:.3f}s")
            assert 0 <= lag < 30

            run_rows = docs(await tail.until(runs_t, lambda rs: len(rs) >= 4, worker))
            by_status = {(r["monitor_slug"], r["status"]): r for r in run_rows}
            assert sorted(by_status) == [
                ("backup", "fail"),
                ("backup", "ok"),
                ("backup", "running"),
                ("report", "ok"),
            ]
            assert by_status["backup", "running"]["run_id"] == rid
            assert by_status["backup", "fail"]["run_id"] == rid
            assert by_status["backup", "fail"]["duration_ms"] == 3000
            assert by_status["backup", "fail"]["exit_code"] == 1
            assert (
                by_status["backup", "fail"]["version"] > by_status["backup", "running"]["version"]
            )

            state_rows = docs(await tail.until(states_t, lambda rs: len(rs) >= 4, worker))
            changes = [(r["monitor_slug"], r["state"]) for r in state_rows]
            assert [c for c in changes if c[0] == "backup"] == [
                ("backup", "down"),
                ("backup", "up"),
            ]
            assert [c for c in changes if c[0] == "report"] == [
                ("report", "up"),
                ("report", "down"),
            ]

            def ours(rs: list[Any]) -> list[Any]:
                stages = ("route", "monitor_check_ins")
                return [r for r in rs if DeadLetterInfo.from_headers(r.headers).stage in stages]

            dead = ours(await tail.until(dead_t, lambda rs: len(ours(rs)) >= 2, worker))
            why = {
                r.value: (info.stage, info.reason)
                for r in dead
                if (info := DeadLetterInfo.from_headers(r.headers))
            }
            # Undecodable: the router, the only reader of ingest.*, refuses it.
            assert why[b"{not json"][0] == "route"
            assert why[b"{not json"][1].startswith("JSONDecodeError")
            assert why[check_in_value(dead, "ghost")] == ("monitor_check_ins", "unknown monitor")
        finally:
            await tail.consumer.stop()
            await producer.stop()

    asyncio.run(scenario())


def check_in_value(records: list[Any], slug: str) -> bytes:
    """The raw value of the dead-lettered check-in for ``slug``."""
    for record in records:
        if record.value.startswith(b"{") and b'"monitor":"%s"' % slug.encode() in record.value:
            return bytes(record.value)
    raise AssertionError(f"no dead-lettered check-in for {slug}")


def test_a_restarted_worker_rebuilds_its_due_index_from_the_table(
    env: dict[str, str], tmp_path: Path
) -> None:
    settings = CommonSettings.from_env(env)
    prefix = settings.topic_prefix
    project, _, report = asyncio.run(provision(settings))
    incidents_t, runs_t, states_t = (t.physical(prefix) for t in (INCIDENTS, RUNS, MONITOR_STATES))
    missed_key = f"{project.id}:monitor_missed:monitor:{report.id}"
    source = INGEST[EventKind.CHECK_IN].physical(prefix)
    first = start_worker(env, tmp_path / "first.log")

    async def before_restart() -> datetime:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
        tail = Tail(settings.bootstrap, [states_t])
        await producer.start()
        await tail.consumer.start()

        async def send(slug: str, at: datetime) -> None:
            value = check_in(project, slug, "ok", at)
            await producer.send_and_wait(source, value, key=f"{project.id}:{slug}".encode())

        try:
            await send("backup", datetime.now(UTC))  # the worker is up once this shows
            await tail.until(states_t, lambda rs: len(rs) >= 1, first)
            last_ping = datetime.now(UTC) - timedelta(seconds=48)
            await send("report", last_ping)
            await tail.until(states_t, lambda rs: len(rs) >= 2, first)
            return last_ping + timedelta(seconds=60)
        finally:
            await tail.consumer.stop()
            await producer.stop()

    try:
        due = asyncio.run(before_restart())
    finally:
        stop_worker(first)
    stopped = datetime.now(UTC)
    assert stopped < due, "the first worker was still running at the due time"
    second = start_worker(env, tmp_path / "second.log")

    async def after_restart() -> tuple[dict[str, Any], list[Any]]:
        tail = Tail(settings.bootstrap, [incidents_t, runs_t])
        await tail.consumer.start()
        try:
            found = await tail.until(
                incidents_t, lambda rs: incident(rs, missed_key, "open") is not None, second
            )
            opened = incident(found, missed_key, "open")
            assert opened is not None
            runs = await tail.until(runs_t, lambda rs: len(rs) >= 2, second)
            return opened, [r for r in docs(runs) if r["monitor_slug"] == "report"]
        finally:
            await tail.consumer.stop()

    try:
        opened, runs = asyncio.run(after_restart())
    finally:
        stop_worker(second)
    assert datetime.fromisoformat(opened["opened_at"]) >= due
    # Replaying the check-in would have scheduled it again; it must not have been replayed.
    assert len(runs) == 1
