"""The gateway's HTTP shell, with the in-memory ListProducer in place of Kafka."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from ingest_gateway.app import create_app
from ingest_gateway.producer import ListProducer
from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.schemas import Event
from pulseline.settings import GatewaySettings

pytestmark = pytest.mark.anyio

INGEST_KEY = new_key(Scope.INGEST)
READ_KEY = new_key(Scope.READ)
PROJECT = 42
AUTH = {"Authorization": f"Bearer {INGEST_KEY}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings() -> GatewaySettings:
    return GatewaySettings.from_env(
        {},
        topic_prefix="unit.",
        retry_after_s=7,
        max_request_bytes=4096,
        max_event_bytes=512,
        max_batch_events=5,
    )


@pytest.fixture
def producer() -> ListProducer:
    return ListProducer()


@pytest.fixture
async def client(
    settings: GatewaySettings, producer: ListProducer
) -> AsyncIterator[httpx.AsyncClient]:
    keyring = StaticKeyRing()
    keyring.add(INGEST_KEY, ApiKey(PROJECT, Scope.INGEST))
    keyring.add(READ_KEY, ApiKey(PROJECT, Scope.READ))
    app = create_app(settings, keyring, producer)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c


async def post(client: httpx.AsyncClient, body: Any, **kwargs: Any) -> httpx.Response:
    headers = {"Content-Type": "application/json", **AUTH, **kwargs.pop("headers", {})}
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post("/v1/events", content=content, headers=headers, **kwargs)


def produced_events(producer: ListProducer) -> Iterator[Event]:
    for _, _, value in producer.records:
        yield Event.model_validate_json(value)


async def test_it_accepts_a_batch_and_produces_each_event_to_its_topic_with_its_key(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    batch = [
        {"kind": "pageview", "distinct_id": "u1", "attributes": {"url": "/a"}},
        {"kind": "event", "distinct_id": "u2", "attributes": {"name": "signup"}},
    ]
    response = await post(client, batch)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert answer["rejected"] == []
    assert [(t, k) for t, k, _ in producer.records] == [
        ("unit.ingest.pageview", f"{PROJECT}:u1".encode()),
        ("unit.ingest.event", f"{PROJECT}:u2".encode()),
    ]
    assert [str(e.event_id) for e in produced_events(producer)] == answer["event_ids"]


async def test_it_stamps_ids_project_and_times(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    before = datetime.now(UTC)
    response = await post(client, [{"kind": "error", "attributes": {"message": "boom"}}])
    after = datetime.now(UTC)

    assert response.status_code == 202
    (event,) = produced_events(producer)
    assert str(event.event_id) == response.json()["event_ids"][0]
    assert event.project_id == PROJECT
    assert before <= event.received_at <= after
    assert event.timestamp == event.received_at
    assert event.attributes == {"message": "boom"}
    assert producer.records[0][1] == f"{PROJECT}:{event.event_id}".encode()


async def test_it_keeps_the_clients_event_id_and_timestamp(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    event_id = uuid.uuid4()
    sent_at = datetime.now(UTC) - timedelta(minutes=3)
    body = {
        "kind": "event",
        "event_id": str(event_id),
        "timestamp": sent_at.isoformat(),
        "attributes": {"name": "signup"},
    }

    response = await post(client, body)

    assert response.status_code == 202
    assert response.json()["event_ids"] == [str(event_id)]
    (event,) = produced_events(producer)
    assert (event.event_id, event.timestamp) == (event_id, sent_at)


async def test_it_takes_one_event_object_as_a_batch_of_one(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    response = await post(client, {"kind": "metric", "attributes": {"name": "cpu", "value": 1}})

    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert producer.records[0][:2] == ("unit.ingest.metric", f"{PROJECT}:cpu".encode())


async def test_it_accepts_a_partial_batch_and_names_each_rejected_event(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    batch = [
        {"kind": "event", "distinct_id": "ok", "attributes": {"name": "signup"}},
        {"kind": "nonsense"},
        "not an object",
        {"kind": "event", "colour": "red"},
    ]
    response = await post(client, batch)

    assert response.status_code == 202
    answer = response.json()
    assert answer["accepted"] == 1
    assert len(answer["event_ids"]) == 1
    assert [r["index"] for r in answer["rejected"]] == [1, 2, 3]
    reasons = [r["reason"] for r in answer["rejected"]]
    assert reasons[0].startswith("kind:")
    assert "JSON object" in reasons[1]
    assert "colour" in reasons[2]
    assert len(producer.records) == 1


async def test_it_answers_400_in_the_same_shape_when_every_event_is_rejected(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    response = await post(client, [{"kind": "nonsense"}, {"no_kind": 1}])

    assert response.status_code == 400
    answer = response.json()
    assert answer["accepted"] == 0
    assert answer["event_ids"] == []
    assert [r["index"] for r in answer["rejected"]] == [0, 1]
    assert producer.records == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'[{"kind": "event"', "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"", "empty_body"),
        (b"[]", "empty_batch"),
        (b'"just a string"', "invalid_body"),
        (b"42", "invalid_body"),
    ],
)
async def test_it_refuses_a_body_that_is_not_events_with_400(
    client: httpx.AsyncClient, producer: ListProducer, body: bytes, code: str
) -> None:
    response = await post(client, body)

    assert response.status_code == 400
    assert response.json()["error"] == code
    assert response.json()["detail"]
    assert producer.records == []


async def test_it_refuses_a_body_over_the_limit_from_its_content_length(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    batch = [{"kind": "event", "attributes": {"name": "s", "pad": "x" * 5000}}]

    response = await post(client, batch)

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "4096" in response.json()["detail"]
    assert producer.records == []


async def test_it_refuses_a_streamed_body_over_the_limit_while_reading(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'[{"kind": "event", "attributes": {"pad": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}]'

    headers = {"Content-Type": "application/json", **AUTH}
    response = await client.post("/v1/events", content=chunks(), headers=headers)

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


async def test_it_rejects_an_event_over_the_event_limit_and_keeps_the_others(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    batch = [
        {"kind": "event", "attributes": {"name": "s", "pad": "x" * 600}},
        {"kind": "event", "attributes": {"name": "signup"}},
    ]

    response = await post(client, batch)

    assert response.status_code == 202
    (rejected,) = response.json()["rejected"]
    assert rejected["index"] == 0
    assert "512" in rejected["reason"]
    assert len(producer.records) == 1


async def test_it_refuses_more_events_than_the_batch_limit_with_413(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    response = await post(client, [{"kind": "event", "attributes": {"name": "signup"}}] * 6)

    assert response.status_code == 413
    assert response.json()["error"] == "too_many_events"
    assert producer.records == []


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Content-Type": "application/xml"}, "unsupported_media_type"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, "unsupported_media_type"),
        ({"Content-Encoding": "compress"}, "unsupported_encoding"),
    ],
)
async def test_it_refuses_content_that_is_not_plain_json_with_415(
    client: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    response = await post(
        client, [{"kind": "event", "attributes": {"name": "signup"}}], headers=headers
    )

    assert response.status_code == 415
    assert response.json()["error"] == code


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain;charset=UTF-8",  # navigator.sendBeacon
        "application/x-www-form-urlencoded",  # curl -d
        "application/vnd.pulseline+json",
    ],
)
async def test_it_takes_json_sent_under_other_common_content_types(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await post(
        client,
        [{"kind": "pageview", "attributes": {"url": "/"}}],
        headers={"Content-Type": content_type},
    )

    assert response.status_code == 202


async def test_it_takes_json_sent_without_a_content_type(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events", content=b'[{"kind": "event", "attributes": {"name": "signup"}}]', headers=AUTH
    )

    assert response.request.headers.get("content-type") is None
    assert response.status_code == 202


async def test_a_form_body_that_is_not_json_is_named_as_such(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", data={"kind": "event"}, headers=AUTH)

    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


@pytest.mark.parametrize(
    ("headers", "params", "code"),
    [
        ({"Authorization": ""}, {}, "malformed_authorization"),
        ({"Authorization": f"Basic {INGEST_KEY}"}, {}, "malformed_authorization"),
        ({"Authorization": "Bearer pl_ingest_nope"}, {}, "unknown_key"),
        ({"Authorization": f"Bearer {READ_KEY}"}, {}, "wrong_scope"),
    ],
)
async def test_it_refuses_a_bad_key_with_401(
    client: httpx.AsyncClient,
    producer: ListProducer,
    headers: dict[str, str],
    params: dict[str, str],
    code: str,
) -> None:
    response = await post(
        client,
        [{"kind": "event", "attributes": {"name": "signup"}}],
        headers=headers,
        params=params,
    )

    assert response.status_code == 401
    assert response.json()["error"] == code
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert producer.records == []


async def test_it_refuses_a_request_without_a_key_with_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events",
        content=b'[{"kind": "event", "attributes": {"name": "signup"}}]',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 401
    assert response.json()["error"] == "missing_key"


async def test_it_refuses_a_read_key_in_the_query_with_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events",
        params={"key": READ_KEY},
        content=b'[{"kind": "event", "attributes": {"name": "signup"}}]',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 401
    assert response.json()["error"] == "wrong_scope"


async def test_it_takes_the_key_from_the_query(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    response = await client.post(
        "/v1/events",
        params={"key": INGEST_KEY},
        content=b'[{"kind": "event", "attributes": {"name": "signup"}}]',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 202
    assert len(producer.records) == 1


async def test_it_answers_503_with_retry_after_when_kafka_does_not_ack(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    producer.failing = True

    response = await post(
        client,
        [
            {"kind": "event", "attributes": {"name": "signup"}},
            {"kind": "error", "attributes": {"message": "m"}},
        ],
    )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"] == "kafka_unavailable"
    assert producer.records == []
    metrics = (await client.get("/metrics")).text
    assert (
        'pulseline_gateway_events_rejected_total{kind="error",reason="kafka_unavailable"} 1.0'
        in (metrics)
    )


async def test_it_answers_unknown_routes_with_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nope")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_healthz_answers_while_kafka_is_down(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    producer.failing = True

    assert (await client.get("/healthz")).status_code == 200


async def test_readyz_follows_kafka(client: httpx.AsyncClient, producer: ListProducer) -> None:
    assert (await client.get("/readyz")).status_code == 200

    producer.failing = True

    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"] == "kafka_unavailable"


async def test_metrics_count_requests_events_bytes_and_produce_latency(
    client: httpx.AsyncClient,
) -> None:
    body = orjson.dumps(
        [
            {"kind": "event", "attributes": {"name": "signup"}},
            {"kind": "event", "attributes": {"name": "signup"}},
            {"kind": "nonsense"},
        ]
    )
    await post(client, body)
    await post(client, b"[", headers={})

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'pulseline_gateway_requests_total{route="/v1/events",status="202"} 1.0' in text
    assert 'pulseline_gateway_requests_total{route="/v1/events",status="400"} 1.0' in text
    assert 'pulseline_gateway_events_accepted_total{kind="event"} 2.0' in text
    assert 'pulseline_gateway_events_rejected_total{kind="unknown",reason="invalid"} 1.0' in text
    assert "pulseline_gateway_produce_seconds_count 1.0" in text
    assert f"pulseline_gateway_request_bytes_total {len(body) + 1}.0" in text


async def test_each_app_has_its_own_metrics(
    settings: GatewaySettings, client: httpx.AsyncClient
) -> None:
    await post(client, [{"kind": "event", "attributes": {"name": "signup"}}])
    other = create_app(settings, StaticKeyRing(), ListProducer())
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="http://other") as fresh:
        text = (await fresh.get("/metrics")).text

    assert "pulseline_gateway_events_accepted_total{" not in text


async def test_the_lifespan_starts_and_stops_the_producer(settings: GatewaySettings) -> None:
    producer = ListProducer()
    app = create_app(settings, StaticKeyRing(), producer)

    async with app.router.lifespan_context(app):
        assert (producer.started, producer.stopped) == (True, False)

    assert producer.stopped


async def test_the_docs_describe_the_ingest_endpoint(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    schema = (await client.get("/openapi.json")).json()

    body = schema["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"][0]["kind"] == "pageview"


class BrokenKeyRing(StaticKeyRing):
    def lookup(self, raw: str) -> ApiKey | None:
        raise RuntimeError("a bug")


async def test_a_bug_answers_a_json_500(settings: GatewaySettings) -> None:
    app = create_app(settings, BrokenKeyRing(), ListProducer())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        response = await post(c, [{"kind": "event", "attributes": {"name": "signup"}}])

    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
