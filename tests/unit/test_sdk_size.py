"""The browser SDK stays small, and ``GET /sdk.js`` serves it with cache headers."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from ingest_gateway.app import create_app
from ingest_gateway.producer import ListProducer
from ingest_gateway.sdk.route import SDK_PATH, accepts_gzip, sdk_router
from pulseline.keys import StaticKeyRing
from pulseline.settings import GatewaySettings

pytestmark = pytest.mark.anyio

MAX_GZIPPED_BYTES = 5120
SDK = SDK_PATH.read_bytes()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(sdk_router())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        yield c


def test_the_sdk_is_under_5_kb_gzipped() -> None:
    size = len(gzip.compress(SDK, compresslevel=9))
    assert size < MAX_GZIPPED_BYTES, f"sdk.js is {size} bytes gzipped"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("*", True),
        ("GZIP", True),
        ("gzip;q=0", False),
        ("br", False),
        ("identity", False),
        ("", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_it_reads_whether_the_client_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


async def test_it_serves_the_sdk_gzipped_with_cache_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/sdk.js", headers={"Accept-Encoding": "gzip"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/javascript"
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["etag"].startswith('"') and response.headers["etag"].endswith('-gz"')
    assert response.content == SDK
    assert response.num_bytes_downloaded < MAX_GZIPPED_BYTES


async def test_it_serves_the_sdk_plain_when_gzip_is_not_accepted(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/sdk.js", headers={"Accept-Encoding": "identity"})

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.content == SDK
    assert response.num_bytes_downloaded == len(SDK)


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
async def test_it_answers_304_when_the_etag_still_matches(
    client: httpx.AsyncClient, encoding: str
) -> None:
    first = await client.get("/sdk.js", headers={"Accept-Encoding": encoding})
    again = await client.get(
        "/sdk.js", headers={"Accept-Encoding": encoding, "If-None-Match": first.headers["etag"]}
    )

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


async def test_an_etag_of_the_other_encoding_does_not_match(client: httpx.AsyncClient) -> None:
    plain = await client.get("/sdk.js", headers={"Accept-Encoding": "identity"})
    zipped = await client.get(
        "/sdk.js", headers={"Accept-Encoding": "gzip", "If-None-Match": plain.headers["etag"]}
    )

    assert zipped.status_code == 200
    assert zipped.headers["etag"] != plain.headers["etag"]


async def test_the_gateway_app_serves_the_sdk() -> None:
    app = create_app(GatewaySettings.from_env({}), StaticKeyRing(), ListProducer())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        response = await c.get("/sdk.js")

    assert response.status_code == 200
    assert response.content == SDK
