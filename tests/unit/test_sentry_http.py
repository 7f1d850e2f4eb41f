"""The Sentry endpoints over the gateway's HTTP shell, with the in-memory ListProducer."""

from __future__ import annotations

import base64
import gzip
import time
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import brotli
import httpx
import orjson
import pytest

from ingest_gateway.app import create_app
from ingest_gateway.producer import ListProducer
from ingest_gateway.sentry.errors import RateLimited
from ingest_gateway.stamp import Record
from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.schemas import Event
from pulseline.settings import GatewaySettings

pytestmark = pytest.mark.anyio

KEY = new_key(Scope.INGEST)
OTHER_PROJECT_KEY = new_key(Scope.INGEST)
READ_KEY = new_key(Scope.READ)
PROJECT = 42
URL = f"/api/{PROJECT}/envelope/"
AUTH = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=test/1, sentry_key={KEY}"}
EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"
LIMIT = 4096
NOW = round(time.time())


class RateLimitedProducer(ListProducer):
    async def send_batch(self, records: Sequence[Record]) -> None:
        raise RateLimited(30, ["error"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def producer() -> ListProducer:
    return ListProducer()


@pytest.fixture
async def client(producer: ListProducer) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings.from_env(
        {}, topic_prefix="unit.", retry_after_s=7, max_request_bytes=LIMIT, max_event_bytes=2048
    )
    keyring = StaticKeyRing()
    keyring.add(KEY, ApiKey(PROJECT, Scope.INGEST))
    keyring.add(OTHER_PROJECT_KEY, ApiKey(7, Scope.INGEST))
    keyring.add(READ_KEY, ApiKey(PROJECT, Scope.READ))
    app = create_app(settings, keyring, producer)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c


def envelope(*items: tuple[dict[str, Any], bytes], header: dict[str, Any] | None = None) -> bytes:
    lines = [orjson.dumps(header if header is not None else {"event_id": EVENT_ID})]
    for item_header, payload in items:
        lines += [orjson.dumps({**item_header, "length": len(payload)}), payload]
    return b"\n".join(lines) + b"\n"


def event_item(**fields: Any) -> tuple[dict[str, Any], bytes]:
    return {"type": "event"}, orjson.dumps({"event_id": EVENT_ID, "message": "boom", **fields})


def produced(producer: ListProducer) -> list[Event]:
    return [Event.model_validate_json(value) for _, _, value in producer.records]


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def test_an_envelope_maps_its_items_and_counts_the_others(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    transaction = {
        "transaction": "GET /",
        "start_timestamp": NOW - 0.5,
        "timestamp": NOW,
        "contexts": {"trace": {"op": "http.server", "trace_id": "a" * 32, "span_id": "b" * 16}},
    }
    body = envelope(
        event_item(),
        ({"type": "transaction"}, orjson.dumps(transaction)),
        ({"type": "check_in"}, b'{"check_in_id":"c","monitor_slug":"m","status":"ok"}'),
        ({"type": "session"}, b'{"sid":"x"}'),
        ({"type": "client_report"}, b"{}"),
        ({"type": "attachment", "filename": "a.txt"}, b"\x00\x01binary\n"),
        ({"type": "something_new"}, b"whatever"),
    )
    response = await client.post(URL, content=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": EVENT_ID}
    assert response.headers["access-control-allow-origin"] == "*"
    events = produced(producer)
    assert [e.kind.value for e in events] == ["error", "transaction", "check_in"]
    assert all(e.project_id == PROJECT for e in events)
    assert events[0].event_id.hex == EVENT_ID
    assert events[0].attributes["message"] == "boom"
    assert events[1].attributes["duration_ms"] == 500
    assert events[2].attributes == {"monitor": "m", "status": "ok", "run_id": "c"}
    text = (await client.get("/metrics")).text
    for kind in ("event", "session", "client_report", "attachment", "other", "check_in"):
        assert metric(text, f'pulseline_gateway_sentry_items_total{{type="{kind}"}}') == 1


async def test_an_envelope_of_only_sessions_is_accepted_without_producing(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    body = envelope(({"type": "session"}, b"{}"), header={})
    response = await client.post(URL, content=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"id": None}
    assert producer.records == []


@pytest.mark.parametrize(
    "how",
    ["x-sentry-auth", "authorization", "query", "dsn"],
)
async def test_the_key_is_found_in_each_place_sdks_put_it(
    client: httpx.AsyncClient, producer: ListProducer, how: str
) -> None:
    headers: dict[str, str] = {}
    header: dict[str, Any] = {"event_id": EVENT_ID}
    url = URL
    if how == "x-sentry-auth":
        headers = AUTH
    elif how == "authorization":
        headers = {"Authorization": f"Sentry sentry_key={KEY}"}
    elif how == "query":
        url = f"{URL}?sentry_key={KEY}&sentry_version=7"
    else:
        header["dsn"] = f"https://{KEY}@sentry.example/{PROJECT}"
    response = await client.post(
        url, content=envelope(event_item(), header=header), headers=headers
    )
    assert response.status_code == 200, response.text
    assert len(producer.records) == 1


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        (None, 401, "missing_key"),
        (new_key(Scope.INGEST), 401, "unknown_key"),
        (READ_KEY, 401, "wrong_scope"),
        (OTHER_PROJECT_KEY, 403, "wrong_project"),
    ],
)
async def test_a_missing_unknown_or_foreign_key_is_refused(
    client: httpx.AsyncClient, producer: ListProducer, key: str | None, status: int, code: str
) -> None:
    headers = {} if key is None else {"X-Sentry-Auth": f"Sentry sentry_key={key}"}
    response = await client.post(URL, content=envelope(event_item()), headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.headers["access-control-allow-origin"] == "*"
    assert producer.records == []


async def test_the_dsn_of_another_project_is_refused_with_a_clear_message(
    client: httpx.AsyncClient,
) -> None:
    header = {"dsn": f"http://{OTHER_PROJECT_KEY}@h/7"}
    response = await client.post(URL, content=envelope(event_item(), header=header))
    assert response.status_code == 403
    assert "belongs to project 7, not to project 42" in response.json()["detail"]


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send
        ("br", brotli.compress),
    ],
)
async def test_compressed_bodies_are_inflated(
    client: httpx.AsyncClient, producer: ListProducer, encoding: str, compress: Any
) -> None:
    body = compress(envelope(event_item()))
    headers = {**AUTH, "Content-Encoding": encoding}
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert len(producer.records) == 1


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("br", brotli.compress), ("deflate", zlib.compress)],
)
async def test_a_small_bomb_is_stopped_at_the_limit(
    client: httpx.AsyncClient, producer: ListProducer, encoding: str, compress: Any
) -> None:
    bomb = compress(envelope(({"type": "attachment"}, b"\0" * 3_000_000)))
    assert len(bomb) < LIMIT
    headers = {**AUTH, "Content-Encoding": encoding}
    response = await client.post(URL, content=bomb, headers=headers)
    assert response.status_code == 413
    assert producer.records == []


async def test_corrupt_or_unknown_encodings_are_refused(client: httpx.AsyncClient) -> None:
    bad = await client.post(URL, content=b"not gzip", headers={**AUTH, "Content-Encoding": "gzip"})
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_encoding")
    cut = gzip.compress(envelope(event_item()))[:-10]
    truncated = await client.post(URL, content=cut, headers={**AUTH, "Content-Encoding": "gzip"})
    assert truncated.status_code == 400
    unknown = await client.post(URL, content=b"x", headers={**AUTH, "Content-Encoding": "zstd"})
    assert unknown.status_code == 415


async def test_an_uncompressed_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    body = envelope(({"type": "attachment"}, b"x" * LIMIT))
    response = await client.post(URL, content=body, headers=AUTH)
    assert response.status_code == 413


async def test_a_malformed_envelope_is_a_400_naming_the_problem(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(URL, content=b'{}\n{"type":"event","length":99}\n{}', headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_envelope"
    assert "declares 99 bytes" in response.json()["detail"]


async def test_an_envelope_whose_only_event_is_invalid_is_a_400(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    body = envelope(({"type": "event"}, b"[1, 2]"))
    response = await client.post(URL, content=body, headers=AUTH)
    assert response.status_code == 400
    assert "not a JSON object" in response.json()["detail"]


async def test_the_browser_sdk_preflight_and_text_plain_post_work(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    preflight = await client.options(
        URL,
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type"
    response = await client.post(
        f"{URL}?sentry_key={KEY}&sentry_version=7",
        content=envelope(event_item()),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://shop.example"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert len(producer.records) == 1


async def test_kafka_down_is_a_503_with_retry_after(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    producer.failing = True
    response = await client.post(URL, content=envelope(event_item()), headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.headers["access-control-allow-origin"] == "*"
    text = (await client.get("/metrics")).text
    name = 'pulseline_gateway_events_rejected_total{kind="error",reason="kafka_unavailable"}'
    assert metric(text, name) == 1


@pytest.mark.parametrize("producer", [RateLimitedProducer()])
async def test_a_rate_limit_is_a_429_sentry_sdks_understand(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, content=envelope(event_item()), headers=AUTH)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert response.headers["x-sentry-rate-limits"] == "30:error:project"
    assert response.json()["error"] == "rate_limited"


async def test_store_accepts_json_and_the_legacy_base64_zlib_body(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    event = orjson.dumps({"event_id": EVENT_ID, "message": "stored"})
    url = f"/api/{PROJECT}/store/"
    plain = await client.post(url, content=event, headers=AUTH)
    assert plain.status_code == 200, plain.text
    assert plain.json() == {"id": EVENT_ID}
    legacy = await client.post(url, content=base64.b64encode(zlib.compress(event)), headers=AUTH)
    assert legacy.status_code == 200, legacy.text
    assert [e.attributes["message"] for e in produced(producer)] == ["stored", "stored"]
    no_slash = await client.post(f"/api/{PROJECT}/store", content=event, headers=AUTH)
    assert no_slash.status_code == 200


async def test_a_non_numeric_project_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/abc/envelope/", content=envelope(event_item()), headers=AUTH)
    assert (response.status_code, response.json()["error"]) == (400, "bad_project")
