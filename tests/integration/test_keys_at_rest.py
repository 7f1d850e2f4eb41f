"""No raw key at rest: after a real gateway, broker and sink have handled a project's
traffic, neither Kafka, nor ClickHouse, nor the logs hold a raw key, and the password
an event carried is stored as ``[Filtered]``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi.testclient import TestClient

from ingest_gateway.app import create_app
from ingest_gateway.producer import KafkaProducer
from ingest_gateway.scrub import FILTERED
from pulseline.control.entities import EntityType, Project
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.keys import Scope, new_key
from pulseline.settings import CommonSettings, GatewaySettings, StorageSettings
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.sink import Sink
from tests.helpers import eventually

pytestmark = pytest.mark.integration

PASSWORD = "hunter2-" + uuid.uuid4().hex[:8]
# Key-shaped but never registered, sent as plain data: the scans must find it (control).
DECOY = new_key(Scope.INGEST)


async def provision(settings: CommonSettings) -> tuple[int, list[str]]:
    store = ControlStore(settings)
    await store.start()
    try:
        service = ControlService(store)
        project = await service.create(EntityType.PROJECT, {"name": "Shop", "slug": "shop"})
        assert isinstance(project, Project)
        raws = [
            (await service.create_key(project.id, scope, scope.value))[1]
            for scope in (Scope.INGEST, Scope.READ)
        ]
        return project.id, raws
    finally:
        await store.stop()


async def topic_bytes(bootstrap: str, prefix: str) -> dict[str, bytes]:
    """Every record (key, value, headers) of every topic named with ``prefix``, raw."""
    lister = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await lister.start()
    try:
        topics = sorted(t for t in await lister.topics() if t.startswith(prefix))
    finally:
        await lister.stop()
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        assert len(parts) >= len(topics), "some topics have no partitions"
        ends = await consumer.end_offsets(parts)
        out = dict.fromkeys(topics, b"")
        deadline = time.monotonic() + 60

        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items() if end])

        while await behind():
            assert time.monotonic() < deadline, "the topics could not be read to their end"
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                for r in records:
                    headers = b"".join(k.encode() + v for k, v in r.headers)
                    out[tp.topic] += (r.key or b"") + (r.value or b"") + headers
        return out
    finally:
        await consumer.stop()


async def table_dump(engine: Engine) -> str:
    db = engine.database
    tables = await engine.rows(
        "SELECT name FROM system.tables WHERE database = {db:String} "
        "AND engine NOT IN ('View', 'MaterializedView')",
        {"db": db},
    )
    dump = ""
    for t in tables:
        raw = await engine.run(
            engine.client.raw_query, f"SELECT * FROM {db}.`{t['name']}` FORMAT TSV"
        )
        dump += raw.decode(errors="replace")
    return dump


def send_events(env: dict[str, str], ingest_key: str, read_key: str) -> list[str]:
    settings = GatewaySettings.from_env(env)
    control = ControlStore(CommonSettings.from_env(env))
    app = create_app(settings, control.view, KafkaProducer(settings), control)
    events: list[dict[str, Any]] = [
        {
            "kind": "event",
            "attributes": {"name": "signup", "properties": {"password": PASSWORD, "n": i}},
        }
        for i in range(20)
    ]
    events.append({"kind": "event", "attributes": {"name": "note", "properties": {"n": DECOY}}})
    with TestClient(app) as client:
        ok = client.post(
            "/v1/events", json=events, headers={"Authorization": f"Bearer {ingest_key}"}
        )
        client.post("/v1/events", json=events, headers={"Authorization": f"Bearer {read_key}"})
        client.post("/v1/events", json=events, headers={"Authorization": f"Bearer {ingest_key}x"})
    assert ok.status_code == 202, ok.text
    ids: list[str] = ok.json()["event_ids"]
    return ids


def test_no_raw_key_is_found_in_kafka_clickhouse_or_the_logs(
    storage_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    storage = StorageSettings.from_env(storage_env)
    project_id, raws = asyncio.run(provision(CommonSettings.from_env(storage_env)))
    event_ids = send_events(storage_env, *raws)
    engine = Engine.open(storage)
    migrate(engine)

    async def scenario() -> tuple[dict[str, bytes], str, list[dict[str, Any]]]:
        sink = Sink(storage, engine, StorageMetrics())
        await sink.start()
        task = asyncio.create_task(sink.run())

        async def stored() -> bool:
            rows = await engine.rows(
                f"SELECT count() AS n FROM {engine.database}.events "
                "WHERE project_id = {p:UInt32}",
                {"p": project_id},
            )
            return int(rows[0]["n"]) >= len(event_ids)

        try:
            assert await eventually(stored, timeout_s=30), "the sink did not store the events"
        finally:
            await sink.stop()
            await task
            await sink.close()
        rows = await engine.rows(
            f"SELECT toString(event_id) AS id, attributes FROM {engine.database}.events"
        )
        return (
            await topic_bytes(storage.bootstrap, storage.topic_prefix),
            await table_dump(engine),
            rows,
        )

    topics, dump, rows = asyncio.run(scenario())
    engine.close()
    logs = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    print(
        f"scanned {len(topics)} topics ({sum(map(len, topics.values()))} bytes), "
        f"{len(dump)} characters of tables, {len(caplog.records)} log records"
    )

    assert event_ids[0].encode() in b"".join(topics.values())  # the scans do read the data
    assert event_ids[0] in dump and "Shop" in dump
    assert DECOY in dump and DECOY.encode() in topics[f"{storage.topic_prefix}ingest.event"]
    assert caplog.records, "nothing was logged, so the log scan proves nothing"
    for raw in raws:
        assert raw not in logs
        assert raw not in dump
        leaking = [t for t, blob in topics.items() if raw.encode() in blob]
        assert leaking == []
    assert sorted(r["id"] for r in rows) == sorted(event_ids)
    passwords = [orjson.loads(r["attributes"])["properties"].get("password") for r in rows]
    assert passwords.count(FILTERED) == 20
    assert PASSWORD not in dump and PASSWORD.encode() not in b"".join(topics.values())
