"""Compressed and NDJSON bodies, and bombs, over the gateway's HTTP shell."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import httpx
import orjson
import pytest

from ingest_gateway.app import create_app
from ingest_gateway.inflate import Decoder
from ingest_gateway.producer import ListProducer
from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.settings import GatewaySettings

KEY = new_key(Scope.INGEST)
BATCH = [{"kind": "event", "attributes": {"name": "signup"}} for _ in range(3)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def producer() -> ListProducer:
    return ListProducer()


@pytest.fixture
async def client(producer: ListProducer) -> httpx.AsyncClient:
    ring = StaticKeyRing()
    ring.add(KEY, ApiKey(1, Scope.INGEST))
    settings = GatewaySettings(max_request_bytes=1024 * 1024, max_compressed_bytes=64 * 1024)
    app = create_app(settings, ring, producer)
    await producer.start()
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gw",
        headers={"Authorization": f"Bearer {KEY}"},
    )


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
}


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", sorted(ENCODERS))
async def test_compressed_batches_are_accepted(
    client: httpx.AsyncClient, producer: ListProducer, encoding: str
) -> None:
    body = ENCODERS[encoding](orjson.dumps(BATCH))
    r = await client.post(
        "/v1/events",
        content=body,
        headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
    )
    assert r.status_code == 202, r.text
    assert len(producer.records) == 3


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", sorted(ENCODERS))
async def test_a_bomb_is_refused_with_413_before_it_inflates(
    client: httpx.AsyncClient, encoding: str
) -> None:
    bomb = ENCODERS[encoding](b" " * 50_000_000)  # 50 MB of whitespace, ~50-100 KB sent
    assert len(bomb) < 64 * 1024 * 2
    r = await client.post(
        "/v1/events", content=bomb[: 64 * 1024], headers={"Content-Encoding": encoding}
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "body_too_large"


@pytest.mark.anyio
async def test_too_many_compressed_bytes_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/events", content=b"x" * (64 * 1024 + 1), headers={"Content-Encoding": "gzip"}
    )
    assert r.status_code == 413


@pytest.mark.anyio
async def test_corrupt_compressed_data_is_a_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/events", content=b"not gzip at all", headers={"Content-Encoding": "gzip"}
    )
    assert r.status_code == 400 and r.json()["error"] == "bad_encoding"


@pytest.mark.anyio
async def test_ndjson_lines_are_events_and_a_bad_line_is_rejected_alone(
    client: httpx.AsyncClient, producer: ListProducer
) -> None:
    body = b"\n".join([orjson.dumps(BATCH[0]), b"{oops", orjson.dumps(BATCH[1]), b""])
    r = await client.post(
        "/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 2
    assert r.json()["rejected"][0]["index"] == 1
    assert r.json()["rejected"][0]["reason"].startswith("not JSON")


def test_the_inflater_never_holds_more_than_about_twice_the_limit() -> None:
    inflater = Decoder("gzip", 1000)
    bomb = gzip.compress(b"a" * 10_000_000)
    with pytest.raises(Exception, match="limit of 1000"):
        inflater.feed(bomb)
    assert inflater.total <= 1001


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 5000 + b"]" * 5000, "json"),  # nesting past the parser's depth limit
        (b'[{"kind": "event", "attributes": {"name": "\xff\xfe"}}]', "json"),  # not UTF-8
        (b'[{"kind": "event", "attributes": {"name": "a"', "json"),  # cut short
    ],
    ids=["deep nesting", "invalid utf-8", "truncated"],
)
async def test_a_body_that_is_not_json_is_a_400_naming_it(
    client: httpx.AsyncClient, producer: ListProducer, body: bytes, says: str
) -> None:
    r = await client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert says in r.text.lower()
    assert producer.records == []


NAMED = {"name": "signup"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"kind": "event", "attributes": ["signup"]}, "attributes: input should be a valid dict"),
        ({"kind": 7, "attributes": NAMED}, "kind: input should be 'error'"),
        ({"kind": "event", "timestamp": 12, "attributes": NAMED}, "timestamp"),
        ({"kind": "event", "timestamp": "2999-01-01T00:00:00Z", "attributes": NAMED}, "future"),
        ({"kind": "event", "attributes": {**NAMED, "n": "1" * 1_100_000}}, "bytes"),
    ],
    ids=["attributes a list", "kind a number", "timestamp a number", "far future", "oversized"],
)
async def test_a_wrong_event_is_refused_with_its_reason_and_sends_nothing(
    client: httpx.AsyncClient, producer: ListProducer, event: dict[str, object], reason: str
) -> None:
    r = await client.post("/v1/events", json=[event])
    assert r.status_code in (400, 413), r.text
    assert reason in r.text.lower(), r.text
    assert producer.records == []
