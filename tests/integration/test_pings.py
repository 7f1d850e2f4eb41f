"""Healthchecks-style pings against a real broker, driven by the real curl of a cron line."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiokafka import AIOKafkaConsumer

from ingest_gateway.app import create_app
from ingest_gateway.producer import KafkaProducer
from pulseline.control.entities import EntityType, Monitor, Project
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.keys import StaticKeyRing
from pulseline.schemas import Event, EventKind
from pulseline.settings import CommonSettings, GatewaySettings
from pulseline.topics import ingest_topic
from tests.helpers import serving

pytestmark = pytest.mark.integration


async def provision(settings: CommonSettings) -> tuple[Project, Monitor]:
    """A project and its monitor, written to the control topic by a store of its own."""
    store = ControlStore(settings)
    await store.start()
    try:
        service = ControlService(store)
        project = await service.create(EntityType.PROJECT, {"name": "ops", "slug": "ops"})
        assert isinstance(project, Project)
        monitor = await service.create(
            EntityType.MONITOR,
            {
                "project_id": project.id,
                "name": "Nightly",
                "slug": "nightly",
                "schedule": {"cron": "0 2 * * *"},
            },
        )
        assert isinstance(monitor, Monitor)
        return project, monitor
    finally:
        await store.stop()


@contextmanager
def serve(env: dict[str, str]) -> Iterator[str]:
    """The gateway (real producer, real control store) under uvicorn; yields its base URL."""
    settings = GatewaySettings.from_env(env)
    control = ControlStore(CommonSettings.from_env(env))
    app = create_app(settings, StaticKeyRing(), KafkaProducer(settings), control)
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


def curl(url: str, *extra: str) -> tuple[int, str]:
    """The cron line: ``curl -fsS --retry 3 -m 10``; its exit code and stdout."""
    done = subprocess.run(
        ["curl", "-fsS", "--retry", "3", "-m", "10", *extra, url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout


async def consume(settings: CommonSettings, expected: int) -> list[tuple[bytes, Event]]:
    topic = ingest_topic(EventKind.CHECK_IN).physical(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen: list[tuple[bytes, Event]] = []
        async with asyncio.timeout(20):
            while len(seen) < expected:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen += [(r.key, Event.model_validate_json(r.value)) for r in records]
        return seen
    finally:
        await consumer.stop()


def test_curl_pings_become_check_in_events_on_kafka(env: dict[str, str]) -> None:
    settings = CommonSettings.from_env(env)
    project, monitor = asyncio.run(provision(settings))
    rid = str(uuid.uuid4())

    with serve(env) as base:
        ok = curl(f"{base}/ping/{monitor.id}")
        start = curl(f"{base}/ping/{monitor.id}/start?rid={rid}")
        failed = curl(f"{base}/ping/{monitor.id}/1?rid={rid}", "--data-raw", "backup failed")
        created = curl(f"{base}/ping/{project.ping_key}/fresh-job?create=1")
        unknown = curl(f"{base}/ping/{uuid.uuid4()}")

    assert ok == (0, "OK")
    assert start == (0, "OK")
    assert failed == (0, "OK")
    assert created == (0, "Created")
    assert unknown[0] == 22  # curl -f: the server answered 404 (and was not retried)

    seen = asyncio.run(consume(settings, 4))
    assert len(seen) == 4
    by_status = {(e.attributes["monitor"], e.attributes["status"]): (k, e) for k, e in seen}
    assert set(by_status) == {
        ("nightly", "ok"),
        ("nightly", "start"),
        ("nightly", "fail"),
        ("fresh-job", "ok"),
    }
    for key, event in by_status.values():
        assert event.project_id == project.id
        assert key == f"{project.id}:{event.attributes['monitor']}".encode()
        assert event.attributes["source"] == "ping"
        assert event.attributes["user_agent"].startswith("curl/")
    _, success = by_status[("nightly", "ok")]
    assert success.attributes["monitor_id"] == monitor.id
    assert success.attributes["method"] == "GET"
    assert "run_id" not in success.attributes
    _, begun = by_status[("nightly", "start")]
    assert begun.attributes["run_id"] == rid
    _, failure = by_status[("nightly", "fail")]
    assert failure.attributes["run_id"] == rid
    assert failure.attributes["exit_code"] == 1
    assert failure.attributes["method"] == "POST"
    assert failure.attributes["output"] == "backup failed"
    assert failure.attributes["output_size"] == len("backup failed")
    _, fresh = by_status[("fresh-job", "ok")]
    assert fresh.attributes["monitor_id"] != monitor.id
