"""The gateway against a real broker: what it answers 202 for is on the topics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from ingest_gateway.app import create_app
from ingest_gateway.producer import KafkaProducer
from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.schemas import Event, EventKind
from pulseline.settings import GatewaySettings
from pulseline.topics import ingest_topic

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

KEY = new_key(Scope.INGEST)
PROJECT = 5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def gateway(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    keyring = StaticKeyRing()
    keyring.add(KEY, ApiKey(PROJECT, Scope.INGEST))
    app = create_app(settings, keyring, KafkaProducer(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as client:
            yield client


async def consume(
    settings: GatewaySettings, kinds: list[EventKind], expected: int, timeout_s: float = 60
) -> list[tuple[str, bytes, Event]]:
    """Read every ingest topic of ``kinds`` from the start until ``expected`` records."""
    topics = [ingest_topic(kind).physical(settings.topic_prefix) for kind in kinds]
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen: list[tuple[str, bytes, Event]] = []
        async with asyncio.timeout(timeout_s):
            while len(seen) < expected:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    seen += [(r.topic, r.key, Event.model_validate_json(r.value)) for r in records]
        return seen
    finally:
        await consumer.stop()


async def test_the_events_it_accepts_are_on_their_topics_with_their_keys(
    env: dict[str, str],
) -> None:
    settings = GatewaySettings.from_env(env)
    client_id = str(uuid.uuid4())
    batch = [
        {"kind": "pageview", "distinct_id": "u1", "attributes": {"url": "/"}},
        {"kind": "error", "event_id": client_id, "attributes": {"message": "boom"}},
        {"kind": "check_in", "attributes": {"monitor": "nightly", "status": "ok"}},
        {"kind": "nonsense"},
        *(
            {"kind": "event", "distinct_id": f"u{i}", "attributes": {"name": "e"}}
            for i in range(50)
        ),
    ]

    async with gateway(settings) as client:
        assert (await client.get("/readyz")).status_code == 200
        response = await client.post("/v1/events", json=batch)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 53
    assert [r["index"] for r in answer["rejected"]] == [3]
    assert client_id in answer["event_ids"]

    kinds = [EventKind.PAGEVIEW, EventKind.ERROR, EventKind.CHECK_IN, EventKind.EVENT]
    seen = await consume(settings, kinds, expected=53)

    assert sorted(str(event.event_id) for _, _, event in seen) == sorted(answer["event_ids"])
    by_id = {str(event.event_id): (topic, key, event) for topic, key, event in seen}
    prefix = settings.topic_prefix
    assert by_id[client_id][:2] == (f"{prefix}ingest.error", f"{PROJECT}:{client_id}".encode())
    assert all(event.project_id == PROJECT for _, _, event in seen)
    keys = {(topic, key) for topic, key, _ in seen}
    assert (f"{prefix}ingest.pageview", f"{PROJECT}:u1".encode()) in keys
    assert (f"{prefix}ingest.check_in", f"{PROJECT}:nightly".encode()) in keys
    assert (f"{prefix}ingest.event", f"{PROJECT}:u49".encode()) in keys


async def test_concurrent_requests_each_wait_for_their_own_acks(env: dict[str, str]) -> None:
    settings = GatewaySettings.from_env(env)

    async with gateway(settings) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/v1/events",
                    json=[
                        {"kind": "event", "distinct_id": f"{n}-{i}", "attributes": {"name": "e"}}
                        for i in range(200)
                    ],
                )
                for n in range(10)
            )
        )

    assert [r.status_code for r in responses] == [202] * 10
    ids = [event_id for r in responses for event_id in r.json()["event_ids"]]
    seen = await consume(settings, [EventKind.EVENT], expected=len(ids))
    assert sorted(str(event.event_id) for _, _, event in seen) == sorted(ids)
